"""Calls, work orders (from an alert or from a hotline request) and the audit log of who looked
at whose personal data."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lianxin.alerts.models import Outcome


class Call(models.Model):
    class Result(models.TextChoices):
        ANSWERED = "answered", _("answered")
        NO_ANSWER = "no_answer", _("no answer")
        RESIDENT_FINE = "resident_fine", _("resident fine")
        NEEDS_HELP = "needs_help", _("needs help")

    alert = models.ForeignKey(
        "alerts.Alert",
        verbose_name=_("alert"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="calls",
    )
    household = models.ForeignKey(
        "care.Household",
        verbose_name=_("household"),
        on_delete=models.PROTECT,
        related_name="calls",
    )
    called = models.CharField(_("who was called"), max_length=100, blank=True)
    at = models.DateTimeField(_("at"), default=timezone.now)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    result = models.CharField(_("result"), max_length=16, choices=Result.choices)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("call")
        verbose_name_plural = _("calls")

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_result_display()}"


class WorkOrder(models.Model):
    class Source(models.TextChoices):
        ALERT = "alert", _("alert")
        HOTLINE = "hotline", _("hotline request")
        # A defect found on a safety inspection, or work done as part of a campaign
        # (lianxin.ledgers keeps the inspection or campaign the order belongs to).
        INSPECTION = "inspection", _("safety inspection")
        CAMPAIGN = "campaign", _("campaign")

    class Status(models.TextChoices):
        ASSIGNED = "assigned", _("assigned")
        ARRIVED = "arrived", _("arrived")
        DONE = "done", _("done")
        CANCELLED = "cancelled", _("cancelled")

    TRANSITIONS = {
        Status.ASSIGNED: {Status.ARRIVED, Status.CANCELLED},
        Status.ARRIVED: {Status.DONE, Status.CANCELLED},
        Status.DONE: set(),
        Status.CANCELLED: set(),
    }

    source = models.CharField(_("source"), max_length=12, choices=Source.choices)
    alert = models.ForeignKey(
        "alerts.Alert",
        verbose_name=_("alert"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="work_orders",
    )
    # Empty for work that is not at one home: a defect an inspection found on a transformer
    # area (a cable, a box on the street). Such an order names its place instead.
    household = models.ForeignKey(
        "care.Household",
        verbose_name=_("household"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="work_orders",
    )
    transformer_area = models.ForeignKey(
        "care.TransformerArea",
        verbose_name=_("transformer area"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    place = models.CharField(_("place"), max_length=200, blank=True)
    request = models.TextField(_("what is needed"))
    team = models.ForeignKey(
        "care.Team", verbose_name=_("team"), on_delete=models.PROTECT, related_name="work_orders"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned to"),
        on_delete=models.PROTECT,
        related_name="work_orders",
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ASSIGNED
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    arrived_at = models.DateTimeField(_("arrived at"), null=True, blank=True)
    arrival_note = models.TextField(_("note on arrival"), blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_note = models.TextField(_("what was done"), blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices, blank=True)
    satisfaction = models.PositiveSmallIntegerField(
        _("resident satisfaction"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("work order")
        verbose_name_plural = _("work orders")
        constraints = [
            models.CheckConstraint(
                condition=Q(satisfaction__isnull=True)
                | (Q(satisfaction__gte=1) & Q(satisfaction__lte=5)),
                name="workorder_satisfaction_1_to_5",
            ),
            models.CheckConstraint(
                condition=~Q(source="alert") | Q(alert__isnull=False),
                name="workorder_alert_source_has_alert",
            ),
            models.CheckConstraint(
                condition=~Q(status="done") | (Q(done_at__isnull=False) & ~Q(outcome="")),
                name="workorder_done_has_time_and_outcome",
            ),
            models.CheckConstraint(
                condition=Q(household__isnull=False) | ~Q(place=""),
                name="workorder_at_a_home_or_a_place",
            ),
        ]
        indexes = [
            # The field view: a member's open work orders.
            models.Index(fields=["assignee", "status"], name="workorder_assignee_idx"),
        ]

    def __str__(self):
        return _("Work order %(n)s") % {"n": self.pk}

    @property
    def area(self):
        """The transformer area the work is in: the home's, else the order's own."""
        if self.household_id is not None:
            return self.household.transformer_area
        return self.transformer_area

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.ASSIGNED, self.Status.ARRIVED)


class AuditEntry(models.Model):
    """Every view of a resident's personal data and every export. Append-only; admins read it."""

    class Action(models.TextChoices):
        VIEW = "view", _("viewed personal data")
        EXPORT = "export", _("exported personal data")

    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    # What was looked at, as a code and its parameters (lianxin.dispatch.audit_codes), shown in
    # the reader's language; `what` holds its English text, or the text of an entry with no code.
    code = models.CharField(_("code"), max_length=40, blank=True, default="")
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    what = models.CharField(_("what"), max_length=200)
    household = models.ForeignKey(
        "care.Household",
        verbose_name=_("household"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    path = models.CharField(_("address"), max_length=300)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        permissions = [("export_personal_data", _("Can export personal data"))]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.user} {self.get_action_display()} {self.described}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError(_("The audit log is append-only."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("The audit log is append-only."))

    @property
    def described(self) -> str:
        """The entry in the reader's language (lianxin.dispatch.audit_codes)."""
        from lianxin.dispatch.audit_codes import render

        return render(self.code, self.params, self.what)
