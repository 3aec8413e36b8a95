"""Channels (destinations), the outbox (one row per message to one recipient through one
channel), delivery attempts, escalation policies and the chain running on each alert, one-time
links for residents and families, maintenance silences and shift handover notes."""

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lianxin.alerts.models import KindChoices, SeverityChoices

LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]


class Channel(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", _("email (SMTP)")
        WEBHOOK = "webhook", _("webhook (signed JSON)")
        WECOM = "wecom", _("WeCom group robot")
        DINGTALK = "dingtalk", _("DingTalk robot")
        FEISHU = "feishu", _("Feishu robot")
        SMS = "sms", _("SMS gateway")
        VOICE = "voice", _("voice-call gateway")

    class Audience(models.TextChoices):
        DUTY = "duty", _("duty operators on shift")
        LEAD = "lead", _("team lead")
        PEOPLE = "people", _("residents and families (SMS / voice gateway)")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    audience = models.CharField(
        _("who it reaches"), max_length=8, choices=Audience.choices, default=Audience.DUTY
    )
    team = models.ForeignKey(
        "care.Team",
        verbose_name=_("team"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="channels",
        help_text=_("Empty: every team."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    language = models.CharField(_("language"), max_length=8, choices=LANGUAGES, default="zh-hans")
    url = models.CharField(
        _("URL"),
        max_length=300,
        blank=True,
        help_text=_("Webhook or gateway URL; robot base URL; SMTP host:port."),
    )
    options = models.JSONField(
        _("options"),
        default=dict,
        blank=True,
        help_text=_("See the channel's module: email from/to, gateway body template."),
    )
    # Write-only once saved: the admin never shows them back.
    token = models.CharField(_("token"), max_length=300, blank=True)
    secret = models.CharField(_("secret"), max_length=300, blank=True)
    quiet_start = models.TimeField(_("quiet hours start"), null=True, blank=True)
    quiet_end = models.TimeField(_("quiet hours end"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        ordering = ["team", "audience", "name"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        constraints = [
            models.CheckConstraint(
                condition=(Q(quiet_start__isnull=True) & Q(quiet_end__isnull=True))
                | (Q(quiet_start__isnull=False) & Q(quiet_end__isnull=False)),
                name="channel_quiet_hours_complete",
                violation_error_message=_("Give both ends of the quiet hours, or neither."),
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"

    def in_quiet_hours(self, at) -> bool:
        if self.quiet_start is None:
            return False
        t = timezone.localtime(at).time()
        if self.quiet_start <= self.quiet_end:
            return self.quiet_start <= t < self.quiet_end
        return t >= self.quiet_start or t < self.quiet_end  # across midnight


class Notification(models.Model):
    """The outbox. Written in the same transaction as the alert change that causes it, sent by
    the worker; `key` is the idempotency key every attempt carries."""

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("not needed any more")

    class To(models.TextChoices):
        STAFF = "staff", _("staff")
        RESIDENT = "resident", _("resident")
        CONTACT = "contact", _("emergency contact")

    key = models.CharField(_("idempotency key"), max_length=64, unique=True)
    alert = models.ForeignKey(
        "alerts.Alert",
        verbose_name=_("alert"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notifications",
    )
    # For events that are not a household alert (enqueue_system): what it is about.
    system_key = models.CharField(_("system event"), max_length=120, blank=True)
    channel = models.ForeignKey(
        Channel, verbose_name=_("channel"), on_delete=models.PROTECT, related_name="+"
    )
    to = models.CharField(_("recipient kind"), max_length=8, choices=To.choices)
    address = models.CharField(_("recipient"), max_length=200, blank=True)
    step = models.PositiveSmallIntegerField(_("escalation step"), default=0)
    severity = models.CharField(_("severity"), max_length=8, choices=SeverityChoices.choices)
    language = models.CharField(_("language"), max_length=8, choices=LANGUAGES)
    title = models.CharField(_("title"), max_length=200)
    text = models.TextField(_("text"))
    link = models.CharField(_("link"), max_length=300, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PENDING
    )
    due_at = models.DateTimeField(_("due at"), default=timezone.now)
    # A claim is a lease: a worker killed between claim and send leaves the row to be taken
    # again once the lease is over (at-least-once, with the same key).
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            # The worker: rows due to be sent (pending, or a lapsed claim).
            models.Index(
                fields=["due_at"],
                name="notification_due_idx",
                condition=Q(status__in=["pending", "sending"]),
            ),
            # The shift page: failures of the last shift.
            models.Index(fields=["status", "created_at"], name="notification_status_idx"),
        ]

    def __str__(self):
        return f"{self.channel} → {self.address or self.get_to_display()} ({self.status})"

    @staticmethod
    def new_key() -> str:
        return f"lx-{uuid.uuid4().hex}"


class Attempt(models.Model):
    """One delivery attempt, kept for every notification (alert ones also go on the timeline)."""

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="attempt_log"
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    ok = models.BooleanField(_("delivered"))
    permanent = models.BooleanField(_("permanent failure"), default=False)
    response = models.CharField(_("response"), max_length=300, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.response}"


class Target(models.TextChoices):
    RESIDENT = "resident", _("the resident (“I am fine” link), if opted in")
    DUTY = "duty", _("duty operators on shift")
    LEAD = "lead", _("team lead")
    CONTACTS = "contacts", _("emergency contacts, where consent allows")


class EscalationPolicy(models.Model):
    """Per team (or every team), per kind (or every kind), from a severity up. The most specific
    policy wins: team before every team, kind before every kind, higher severity first."""

    name = models.CharField(_("name"), max_length=100)
    team = models.ForeignKey(
        "care.Team",
        verbose_name=_("team"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        help_text=_("Empty: every team."),
    )
    kind = models.CharField(
        _("alert kind"),
        max_length=24,
        choices=KindChoices.choices,
        blank=True,
        help_text=_("Empty: every kind."),
    )
    min_severity = models.CharField(
        _("from severity"), max_length=8, choices=SeverityChoices.choices, default="info"
    )
    repeat_minutes = models.PositiveIntegerField(
        _("repeat every (minutes)"), default=0, help_text=_("0: do not repeat.")
    )
    max_repeats = models.PositiveSmallIntegerField(_("repeat at most"), default=3)

    class Meta:
        ordering = ["team", "kind", "min_severity"]
        verbose_name = _("escalation policy")
        verbose_name_plural = _("escalation policies")

    def __str__(self):
        return self.name


class EscalationStep(models.Model):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField(_("order"))
    wait_minutes = models.PositiveIntegerField(
        _("wait (minutes)"), default=0, help_text=_("After the previous step, if not acknowledged.")
    )
    target = models.CharField(_("notify"), max_length=10, choices=Target.choices)

    class Meta:
        ordering = ["policy", "order"]
        verbose_name = _("escalation step")
        verbose_name_plural = _("escalation steps")

    def __str__(self):
        return f"{self.order}. +{self.wait_minutes} min {self.get_target_display()}"


class Escalation(models.Model):
    """The chain running on one alert: a copy of its policy taken when it started, so editing a
    policy never changes an alert already being escalated."""

    alert = models.OneToOneField(
        "alerts.Alert", on_delete=models.CASCADE, related_name="escalation"
    )
    policy_name = models.CharField(max_length=100)
    steps = models.JSONField(default=list)  # [{"target": ..., "wait": minutes}, ...]
    repeat_minutes = models.PositiveIntegerField(default=0)
    max_repeats = models.PositiveSmallIntegerField(default=0)
    next_index = models.PositiveSmallIntegerField(default=0)
    repeats_done = models.PositiveSmallIntegerField(default=0)
    next_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=40, blank=True)
    # The resident was asked "are you fine?" and did not answer in time.
    resident_unanswered = models.BooleanField(default=False)

    class Meta:
        indexes = [
            # The worker: chains with a step due.
            models.Index(
                fields=["next_at"], name="escalation_due_idx", condition=Q(stopped_at__isnull=True)
            )
        ]

    def __str__(self):
        return f"{self.alert_id}: {self.policy_name}"


class PersonPreference(models.Model):
    """Per care recipient: the resident's opt-in to be asked first, and languages."""

    class Reach(models.TextChoices):
        SMS = "sms", _("text message with a link")
        VOICE = "voice", _("voice call")

    care_recipient = models.OneToOneField(
        "care.CareRecipient",
        verbose_name=_("care recipient"),
        on_delete=models.CASCADE,
        related_name="notify_preference",
    )
    ask_resident_first = models.BooleanField(
        _("ask the resident first (“I am fine”)"),
        default=False,
        help_text=_("Inactivity: reach the resident before the duty room."),
    )
    reach_by = models.CharField(
        _("reach the resident by"), max_length=8, choices=Reach.choices, default=Reach.SMS
    )
    wait_minutes = models.PositiveIntegerField(_("wait for the answer (minutes)"), default=15)
    resident_language = models.CharField(
        _("resident's language"), max_length=8, choices=LANGUAGES, default="zh-hans"
    )
    family_language = models.CharField(
        _("family's language"), max_length=8, choices=LANGUAGES, default="zh-hans"
    )

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")

    def __str__(self):
        return str(self.care_recipient)


class OneTimeLink(models.Model):
    """A link sent to a resident ("I am fine") or an emergency contact ("she is with us").
    Only the SHA-256 of the token is stored; the URL carries no personal data."""

    class Purpose(models.TextChoices):
        FINE = "fine", _("resident is fine")
        AWAY = "away", _("resident is with the family")
        # Voice calls: the gateway calls back with the key pressed (see channels/gateway.py).
        VOICE = "voice", _("resident's answer to a voice call")
        ACK = "ack", _("staff acknowledgement by voice call")

    digest = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    alert = models.ForeignKey("alerts.Alert", on_delete=models.CASCADE, null=True, blank=True)
    household = models.ForeignKey("care.Household", on_delete=models.CASCADE)
    contact = models.ForeignKey(
        "care.EmergencyContact", on_delete=models.CASCADE, null=True, blank=True
    )
    # Voice callbacks: the channel whose secret signs the provider's callback, and for ACK the
    # staff member the call went to (who acknowledges by pressing 1).
    channel = models.ForeignKey(
        Channel, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("one-time link")
        verbose_name_plural = _("one-time links")

    def __str__(self):
        return f"{self.get_purpose_display()} {self.created_at:%Y-%m-%d %H:%M}"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class Silence(models.Model):
    """A maintenance silence: no notifications for what it matches between start and end. The
    alerts themselves stay in the queue."""

    transformer_area = models.ForeignKey(
        "care.TransformerArea",
        verbose_name=_("transformer area"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
    )
    household = models.ForeignKey(
        "care.Household",
        verbose_name=_("household"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
    )
    kind = models.CharField(_("alert kind"), max_length=24, choices=KindChoices.choices, blank=True)
    starts_at = models.DateTimeField(_("from"), default=timezone.now)
    ends_at = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=200)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("set by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["-starts_at"]
        verbose_name = _("maintenance silence")
        verbose_name_plural = _("maintenance silences")
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")),
                name="silence_ends_after_start",
                violation_error_message=_("A silence must end after it starts."),
            ),
            models.CheckConstraint(
                condition=Q(transformer_area__isnull=False)
                | Q(household__isnull=False)
                | ~Q(kind=""),
                name="silence_matches_something",
                violation_error_message=_("Choose a transformer area, a household or a kind."),
            ),
        ]

    def __str__(self):
        return self.reason

    def matches(self, alert) -> bool:
        if self.kind and alert.kind != self.kind:
            return False
        if self.household_id and alert.household_id != self.household_id:
            return False
        if self.transformer_area_id and alert.transformer_area_id != self.transformer_area_id:
            return False
        return True


class HandoverNote(models.Model):
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    text = models.TextField(_("handover note"))

    class Meta:
        ordering = ["-at"]
        verbose_name = _("handover note")
        verbose_name_plural = _("handover notes")

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.author}"


class RosterShift(models.Model):
    """Who is on duty when (the roster). Escalation's "duty operators on shift" step calls and
    texts the people rostered at that moment; when nobody is rostered for a team then, every
    member with the duty-operator role is reached, as before a roster existed."""

    team = models.ForeignKey(
        "care.Team", verbose_name=_("team"), on_delete=models.CASCADE, related_name="roster"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("on duty"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        ordering = ["starts_at", "team"]
        verbose_name = _("roster shift")
        verbose_name_plural = _("duty roster")
        indexes = [models.Index(fields=["ends_at", "starts_at"], name="roster_when_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")),
                name="roster_ends_after_start",
                violation_error_message=_("A shift must end after it starts."),
            )
        ]

    def __str__(self):
        return f"{self.user} {self.starts_at:%m-%d %H:%M}–{self.ends_at:%m-%d %H:%M}"
