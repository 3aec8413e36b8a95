"""What Lianxin knows about its own health: heartbeats of its processes, the arrival history of
each data source, and system alerts (its own failures, shown to the duty room)."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Heartbeat(models.Model):
    """The last beat of one long-running process (one row per process name, updated in place)."""

    process = models.CharField(_("process"), max_length=200, unique=True)
    host = models.CharField(_("host"), max_length=200, blank=True)
    pid = models.IntegerField(_("process id"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    at = models.DateTimeField(_("last beat"), default=timezone.now)
    every_s = models.FloatField(_("expected seconds between beats"), null=True, blank=True)
    duration_s = models.FloatField(_("last step took (s)"), null=True, blank=True)
    # The engine's clock after the last step, and how far it trailed the time it should have
    # reached (real time, or the demo's clock) at that beat.
    clock = models.DateTimeField(_("engine clock"), null=True, blank=True)
    lag_s = models.FloatField(_("lag at the beat (s)"), null=True, blank=True)
    lateness_s = models.FloatField(_("allowed lateness (s)"), null=True, blank=True)
    behind = models.BigIntegerField(_("readings behind"), null=True, blank=True)
    backlog = models.BigIntegerField(_("backlog"), null=True, blank=True)
    # Since when the backlog has not gone down (None while it drains or is empty).
    backlog_since = models.DateTimeField(_("backlog not draining since"), null=True, blank=True)
    detail = models.JSONField(_("last step"), default=dict, blank=True)
    stopped_at = models.DateTimeField(_("stopped cleanly at"), null=True, blank=True)

    class Meta:
        ordering = ["process"]
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self):
        return f"{self.process} at {self.at:%Y-%m-%d %H:%M:%S}"


class Source(models.Model):
    """A data source (an API token, an MQTT subscription, a watched folder) and the gaps
    between its arrivals, from which its usual gap is learned."""

    class Kind(models.TextChoices):
        TOKEN = "token", _("API token")
        MQTT = "mqtt", _("MQTT subscription")
        FOLDER = "folder", _("watched folder")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=300)
    first_seen_at = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    arrivals = models.BigIntegerField(_("arrivals recorded"), default=0)
    gaps = models.JSONField(_("recent gaps (s)"), default=list, blank=True)

    class Meta:
        ordering = ["kind", "name"]
        verbose_name = _("data source")
        verbose_name_plural = _("data sources")
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="health_source_once")]

    def __str__(self):
        return f"{self.kind} {self.name}"


class SystemAlert(models.Model):
    """One stretch of time during which something in Lianxin itself was wrong."""

    class Kind(models.TextChoices):
        MONITOR_DOWN = "monitor_down", _("monitor not stepping")
        ENGINE_LAG = "engine_lag", _("engine clock behind")
        PROCESS_DOWN = "process_down", _("process not beating")
        SOURCE_SILENT = "source_silent", _("data source silent")
        CONCENTRATOR_DOWN = "concentrator_down", _("transformer area's meters silent")
        BACKLOG = "backlog", _("backlog not draining")

    key = models.CharField(_("key"), max_length=400)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        verbose_name = _("system alert")
        verbose_name_plural = _("system alerts")
        constraints = [
            # Two processes (web and watchdog) may notice the same failure at once: one wins.
            models.UniqueConstraint(
                fields=["key"], condition=Q(cleared_at__isnull=True), name="health_alert_open_once"
            )
        ]
        # Serves the banner's query: the open ones.
        indexes = [models.Index(fields=["cleared_at"], name="health_alert_cleared")]

    def __str__(self):
        return f"{self.kind} {self.subject}"

    @property
    def duration(self):
        return (self.cleared_at or timezone.now()) - self.opened_at
