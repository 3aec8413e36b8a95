"""Alerts: what the duty room works. One explicit status with a table of allowed transitions,
and an append-only event log from which timelines and response times are read.

A finding opens an alert or updates the open alert with the same key (kind + subject); a
database constraint allows one open alert per key.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from lianxin.engine.findings import SEVERITY_RANK, Kind, Severity


class KindChoices(models.TextChoices):
    NO_POWER = Kind.NO_POWER.value, _("no power at home")
    GRID_OUTAGE = Kind.GRID_OUTAGE.value, _("grid outage")
    INACTIVITY = Kind.INACTIVITY.value, _("no activity")
    HIGH_LOAD = Kind.HIGH_LOAD.value, _("high load")
    DATA_GAP = Kind.DATA_GAP.value, _("meter not reporting")
    CONSUMPTION_SHIFT = Kind.CONSUMPTION_SHIFT.value, _("pattern changed")
    PAYMENT_RISK = Kind.PAYMENT_RISK.value, _("payment risk")
    PREPAID_CUTOFF = Kind.PREPAID_CUTOFF.value, _("prepaid supply cut off")
    VOLTAGE = Kind.VOLTAGE.value, _("voltage problem")


class SeverityChoices(models.TextChoices):
    INFO = Severity.INFO.value, _("info")
    WARNING = Severity.WARNING.value, _("warning")
    CRITICAL = Severity.CRITICAL.value, _("critical")


class Status(models.TextChoices):
    OPEN = "open", _("open")
    ACKNOWLEDGED = "acknowledged", _("acknowledged")
    DISPATCHED = "dispatched", _("dispatched")
    INHIBITED = "inhibited", _("covered by grid outage")
    SILENCED = "silenced", _("silenced (away)")
    RESOLVED = "resolved", _("resolved")


# Which status may follow which. Every change goes through Alert.transition, which checks this.
TRANSITIONS: dict[str, set[str]] = {
    Status.OPEN: {
        Status.ACKNOWLEDGED,
        Status.DISPATCHED,
        Status.INHIBITED,
        Status.SILENCED,
        Status.RESOLVED,
    },
    # Silenced too: an away period set after the call that found the resident away.
    Status.ACKNOWLEDGED: {Status.DISPATCHED, Status.OPEN, Status.RESOLVED, Status.SILENCED},
    # Back to acknowledged when a work order is cancelled.
    Status.DISPATCHED: {Status.ACKNOWLEDGED, Status.RESOLVED},
    # Released when the outage or the away period ends while the condition persists.
    Status.INHIBITED: {Status.OPEN, Status.ACKNOWLEDGED, Status.RESOLVED},
    Status.SILENCED: {Status.OPEN, Status.ACKNOWLEDGED, Status.RESOLVED},
    Status.RESOLVED: set(),
}
# Statuses a person still has to work (the queue); inhibited and silenced are shown apart.
ACTIVE = [Status.OPEN, Status.ACKNOWLEDGED, Status.DISPATCHED]
NOT_RESOLVED = [s for s in Status.values if s != Status.RESOLVED]


class Outcome(models.TextChoices):
    REAL_EMERGENCY = "real_emergency", _("real emergency")
    FAULT_REPAIRED = "fault_repaired", _("fault repaired")
    RESIDENT_FINE = "resident_fine", _("resident fine")
    AWAY = "away", _("resident away")
    FALSE_ALARM = "false_alarm", _("false alarm")
    DATA_PROBLEM = "data_problem", _("data problem")


# Kinds whose persistence after a close means the person may still be in danger; outcomes that
# say the alarm itself was wrong or explained are not raised again.
RERAISE_KINDS = {Kind.NO_POWER.value, Kind.PREPAID_CUTOFF.value, Kind.INACTIVITY.value}
NO_RERAISE_OUTCOMES = {Outcome.FALSE_ALARM, Outcome.DATA_PROBLEM, Outcome.AWAY}


class TransitionError(ValidationError):
    pass


class Alert(models.Model):
    kind = models.CharField(_("kind"), max_length=24, choices=KindChoices.choices)
    severity = models.CharField(_("severity"), max_length=8, choices=SeverityChoices.choices)
    # SEVERITY_RANK of severity, stored so the queue sorts worst first in SQL.
    severity_rank = models.PositiveSmallIntegerField(_("severity rank"), default=0)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.OPEN
    )
    # kind|subject (household code, or ta:<code> for a grid outage): the deduplication key.
    key = models.CharField(_("key"), max_length=120)
    household = models.ForeignKey(
        "care.Household",
        verbose_name=_("household"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="alerts",
    )
    transformer_area = models.ForeignKey(
        "care.TransformerArea",
        verbose_name=_("transformer area"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="alerts",
    )
    # For a grid outage: the household codes inside it (the welfare-call list is read from it).
    households = models.JSONField(_("households covered"), default=list, blank=True)
    # The grid outage that inhibits this alert (the group it belongs to).
    parent = models.ForeignKey(
        "self",
        verbose_name=_("grid outage"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="children",
    )
    reason_en = models.TextField(_("reason (English)"))
    reason_zh = models.TextField(_("reason (Chinese)"))
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)
    started_at = models.DateTimeField(_("anomaly began"))
    detected_at = models.DateTimeField(_("detected at"))
    last_detected_at = models.DateTimeField(_("last detected at"))
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    # The engine said the condition is over; the case stays open until a person closes it.
    condition_cleared_at = models.DateTimeField(_("condition cleared at"), null=True, blank=True)
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("held by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="held_alerts",
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices, blank=True)
    # When the monitor handed the outcome to the engine (it learns from alarms that were no
    # emergency); empty until then.
    fed_back_at = models.DateTimeField(_("outcome given to the engine"), null=True, blank=True)
    # Closed while the meter still showed the condition: the monitor checks it once, after
    # LIANXIN_RERAISE_AFTER_MINUTES, and raises it again if it still persists. A mark rather
    # than a time window, so a close is checked however long the monitor was down, and a close
    # already checked (or whose condition cleared) is never scanned again.
    reraise_pending = models.BooleanField(_("to be checked for re-raising"), default=False)

    class Meta:
        ordering = ["-severity_rank", "started_at"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        constraints = [
            # Deduplication: a finding updates the open alert of its key, never opens a second.
            models.UniqueConstraint(
                fields=["key"], condition=~Q(status="resolved"), name="alert_one_open_per_key"
            ),
            models.CheckConstraint(
                condition=Q(household__isnull=False) | Q(transformer_area__isnull=False),
                name="alert_has_subject",
            ),
            models.CheckConstraint(
                condition=~Q(status="resolved") | Q(resolved_at__isnull=False),
                name="alert_resolved_has_time",
            ),
        ]
        indexes = [
            # The queue: unresolved alerts, worst first.
            models.Index(fields=["status", "-severity_rank", "started_at"], name="alert_queue_idx"),
            # The ledgers' figures and exports filter alerts by when they were detected.
            models.Index(fields=["detected_at"], name="alert_detected_idx"),
            # The monitor's re-raise check: the few closes still waiting to be checked.
            models.Index(
                fields=["resolved_at"],
                name="alert_reraise_idx",
                condition=Q(reraise_pending=True),
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · {self.household or self.transformer_area}"

    @property
    def reason(self) -> str:
        lang = get_language() or ""
        return self.reason_en if lang.startswith("en") else self.reason_zh

    @property
    def is_open(self) -> bool:
        return self.status != Status.RESOLVED

    def allowed(self, to: str) -> bool:
        return to in TRANSITIONS[self.status]

    def transition(self, to: str, *, actor=None, action: str, note: str = "", data=None, at=None):
        """Move to status `to` and log it; raises TransitionError for a move the table forbids."""
        if to != self.status and not self.allowed(to):
            raise TransitionError(
                _("An alert that is %(old)s cannot become %(new)s.")
                % {"old": self.get_status_display(), "new": Status(to).label}
            )
        at = at or timezone.now()
        old = self.status
        self.status = to
        if to == Status.RESOLVED:
            self.resolved_at = at
            # Every close goes through here (the case page, a field "done", the resident's
            # link, a grid outage's children), so every one is marked when it needs the check.
            self.reraise_pending = (
                self.condition_cleared_at is None
                and self.kind in RERAISE_KINDS
                and self.outcome not in NO_RERAISE_OUTCOMES
            )
        self.save()
        return self.log(action, actor=actor, note=note, data=data, at=at, from_status=old)

    def log(self, action, *, actor=None, note="", data=None, at=None, from_status=None):
        return AlertEvent.objects.create(
            alert=self,
            action=action,
            actor=actor,
            note=note,
            data=data or {},
            at=at or timezone.now(),
            from_status=from_status if from_status is not None else self.status,
            to_status=self.status,
        )

    def set_severity(self, severity: str):
        self.severity = severity
        self.severity_rank = SEVERITY_RANK[Severity(severity)]


class Action(models.TextChoices):
    OPENED = "opened", _("opened")
    RECURRED = "recurred", _("occurred again")
    ESCALATED = "escalated", _("severity raised")
    CLEARED = "cleared", _("condition cleared")
    INHIBITED = "inhibited", _("covered by grid outage")
    SILENCED = "silenced", _("silenced: resident away")
    RELEASED = "released", _("released")
    ACKNOWLEDGED = "acknowledged", _("acknowledged")
    CALL = "call", _("call")
    DISPATCHED = "dispatched", _("work order dispatched")
    ARRIVED = "arrived", _("arrived")
    WORK_DONE = "work_done", _("work done")
    CANCELLED = "cancelled", _("work order cancelled")
    NOTE = "note", _("note")
    RESOLVED = "resolved", _("resolved")
    # Written by lianxin.notify: escalation steps, and every delivery attempt.
    ESCALATION = "escalation", _("escalation")
    NOTIFIED = "notified", _("notification sent")
    NOT_DELIVERED = "not_delivered", _("notification failed")


class AlertEvent(models.Model):
    """One row per thing that happened to an alert. Rows are never changed or deleted."""

    alert = models.ForeignKey(
        Alert, verbose_name=_("alert"), on_delete=models.PROTECT, related_name="events"
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    from_status = models.CharField(_("from"), max_length=16, choices=Status.choices)
    to_status = models.CharField(_("to"), max_length=16, choices=Status.choices)
    note = models.TextField(_("note"), blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("alert event")
        verbose_name_plural = _("alert events")
        indexes = [
            # Response-time figures: first event of an action per alert.
            models.Index(fields=["alert", "action", "at"], name="alertevent_action_idx"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_action_display()}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError(_("Alert events are append-only."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("Alert events are append-only."))


class AppliedFinding(models.Model):
    """Each (finding_id, event) applied once: apply_findings is idempotent on it."""

    finding_id = models.CharField(_("finding id"), max_length=64)
    event = models.CharField(_("event"), max_length=8)
    alert = models.ForeignKey(
        Alert,
        verbose_name=_("alert"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="findings",
    )
    applied_at = models.DateTimeField(_("applied at"), default=timezone.now)
    finding = models.JSONField(_("finding"), default=dict)

    class Meta:
        verbose_name = _("applied finding")
        verbose_name_plural = _("applied findings")
        constraints = [
            models.UniqueConstraint(fields=["finding_id", "event"], name="appliedfinding_once")
        ]

    def __str__(self):
        return f"{self.finding_id} {self.event}"


class AwayPeriod(models.Model):
    """A silence: the resident is away ("staying with her daughter until the 3rd"), so
    inactivity alerts for the home are silenced between starts_at and ends_at."""

    household = models.ForeignKey(
        "care.Household",
        verbose_name=_("household"),
        on_delete=models.PROTECT,
        related_name="away_periods",
    )
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    comment = models.CharField(_("comment"), max_length=200)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("set by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    # The kinds an away period silences: an empty home is not a no-power or high-load emergency.
    SILENCES = {Kind.INACTIVITY.value}

    class Meta:
        ordering = ["-starts_at"]
        verbose_name = _("away period")
        verbose_name_plural = _("away periods")
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")),
                name="awayperiod_ends_after_start",
                violation_error_message=_("An away period must end after it starts."),
            )
        ]
        indexes = [models.Index(fields=["household", "ends_at"], name="awayperiod_active_idx")]

    def __str__(self):
        return f"{self.household} {self.starts_at:%Y-%m-%d} – {self.ends_at:%Y-%m-%d}"

    def covers(self, at) -> bool:
        return self.starts_at <= at < self.ends_at
