"""The team's records beside the alert and dispatch logs: safety inspections and their defects,
campaigns, activities, and the attachments (photos, forms) of any of them.

Nothing here repeats a figure that the logs already hold: visits, repairs and response times are
read from dispatch.WorkOrder and alerts.AlertEvent (see figures.py). What is kept here is what
only the team knows: the checklist of an inspection, the households restored on a campaign day,
how many people came to a safety talk.
"""

from datetime import timedelta

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class LedgerAccess(models.Model):
    """No rows: it carries the permissions to read the ledgers and the figures."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_ledgers", _("Can read the ledgers and the figures"))]

    def __str__(self):
        return "ledgers"


class OrderDetail(models.Model):
    """What a work order's log does not hold: who else went, and what was used."""

    work_order = models.OneToOneField(
        "dispatch.WorkOrder",
        verbose_name=_("work order"),
        on_delete=models.CASCADE,
        related_name="detail",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("members"), blank=True, related_name="+"
    )
    materials = models.TextField(_("materials"), blank=True)

    class Meta:
        verbose_name = _("work order detail")
        verbose_name_plural = _("work order details")

    def __str__(self):
        return str(self.work_order)


class InspectionPlan(models.Model):
    """A recurring safety inspection of a priority estate or transformer area."""

    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    team = models.ForeignKey(
        "care.Team", verbose_name=_("team"), on_delete=models.PROTECT, related_name="+"
    )
    transformer_area = models.ForeignKey(
        "care.TransformerArea",
        verbose_name=_("transformer area"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    community = models.CharField(_("community"), max_length=100, blank=True)
    every_days = models.PositiveSmallIntegerField(
        _("every (days)"), default=30, validators=[MinValueValidator(1)]
    )
    # The items to check, in order: ["meter box sealed", "no exposed wiring", ...].
    checklist = models.JSONField(_("checklist"), default=list)
    first_on = models.DateField(_("first inspection on"), default=timezone.localdate)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("inspection plan")
        verbose_name_plural = _("inspection plans")
        constraints = [
            models.CheckConstraint(
                condition=Q(every_days__gte=1), name="inspectionplan_every_day_or_more"
            )
        ]

    def __str__(self):
        return self.name

    def due_dates(self, start, end):
        """The dates in [start, end) this plan is due on: first_on + k * every_days."""
        if end <= self.first_on:
            return []
        k = max(0, -(-(start - self.first_on).days // self.every_days))
        out = []
        while True:
            day = self.first_on + timedelta(days=k * self.every_days)
            if day >= end:
                return out
            out.append(day)
            k += 1


class Inspection(models.Model):
    plan = models.ForeignKey(
        InspectionPlan,
        verbose_name=_("inspection plan"),
        on_delete=models.PROTECT,
        related_name="inspections",
    )
    team = models.ForeignKey(
        "care.Team", verbose_name=_("team"), on_delete=models.PROTECT, related_name="+"
    )
    due_on = models.DateField(_("due on"))
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("members"), blank=True, related_name="+"
    )
    # One entry per checklist item: {"item": ..., "ok": true/false, "note": ...}.
    results = models.JSONField(_("checklist results"), default=list, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        ordering = ["-due_on"]
        verbose_name = _("inspection")
        verbose_name_plural = _("inspections")
        constraints = [
            models.UniqueConstraint(fields=["plan", "due_on"], name="inspection_once_per_due_date"),
            models.CheckConstraint(
                condition=Q(done_at__isnull=True)
                | Q(started_at__isnull=False) & Q(done_at__gte=models.F("started_at")),
                name="inspection_done_after_start",
            ),
        ]
        indexes = [models.Index(fields=["done_at"], name="inspection_done_idx")]

    def __str__(self):
        return f"{self.plan} {self.due_on}"


class Defect(models.Model):
    """Something wrong found on an inspection; fixing it may take a repair work order."""

    inspection = models.ForeignKey(
        Inspection, verbose_name=_("inspection"), on_delete=models.PROTECT, related_name="defects"
    )
    description = models.TextField(_("what is wrong"))
    household = models.ForeignKey(
        "care.Household",
        verbose_name=_("household"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    found_at = models.DateTimeField(_("found at"), default=timezone.now)
    fixed_at = models.DateTimeField(_("fixed at"), null=True, blank=True)
    fixed_note = models.TextField(_("how it was fixed"), blank=True)
    repair_order = models.OneToOneField(
        "dispatch.WorkOrder",
        verbose_name=_("repair work order"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="defect",
    )

    class Meta:
        ordering = ["found_at"]
        verbose_name = _("defect")
        verbose_name_plural = _("defects")

    def __str__(self):
        return self.description[:60]


class Campaign(models.Model):
    """Work beyond the daily round: an emergency restoration after a flood, a winter check."""

    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    team = models.ForeignKey(
        "care.Team", verbose_name=_("team"), on_delete=models.PROTECT, related_name="+"
    )
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"))
    place = models.CharField(_("place"), max_length=200, blank=True)
    transformer_areas = models.ManyToManyField(
        "care.TransformerArea", verbose_name=_("transformer areas"), blank=True, related_name="+"
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("members"), blank=True, related_name="+"
    )
    # Members who are not users of Lianxin (colleagues from other teams), counted only.
    other_members = models.PositiveIntegerField(_("members from elsewhere"), default=0)
    work_orders = models.ManyToManyField(
        "dispatch.WorkOrder", verbose_name=_("work orders"), blank=True, related_name="campaigns"
    )
    note = models.TextField(_("note"), blank=True)

    class Meta:
        ordering = ["-starts_on"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=models.F("starts_on")), name="campaign_ends_after_start"
            )
        ]

    def __str__(self):
        return self.name

    @property
    def days(self) -> int:
        return (self.ends_on - self.starts_on).days + 1


class CampaignDay(models.Model):
    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="days_log"
    )
    day = models.DateField(_("day"))
    households_restored = models.PositiveIntegerField(_("households restored"), default=0)
    members_out = models.PositiveIntegerField(_("members out"), default=0)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        ordering = ["day"]
        verbose_name = _("campaign day")
        verbose_name_plural = _("campaign days")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "day"], name="campaignday_once_per_day")
        ]

    def __str__(self):
        return f"{self.campaign} {self.day}"


class Activity(models.Model):
    class Kind(models.TextChoices):
        SAFETY_TALK = "safety_talk", _("safety talk")
        VETERANS = "veterans", _("visit to veterans")
        CHILDREN = "children", _("help for left-behind children")
        GOVERNANCE = "governance", _("community governance")
        ONE_STOP = "one_stop", _("one-stop service day")
        OTHER = "other", _("other activity")

    kind = models.CharField(_("type"), max_length=12, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200, blank=True)
    team = models.ForeignKey(
        "care.Team", verbose_name=_("team"), on_delete=models.PROTECT, related_name="+"
    )
    on = models.DateField(_("date"))
    place = models.CharField(_("place"), max_length=200)
    transformer_area = models.ForeignKey(
        "care.TransformerArea",
        verbose_name=_("transformer area"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("members"), blank=True, related_name="+"
    )
    beneficiaries = models.PositiveIntegerField(_("beneficiaries"), default=0)
    # Named only where the person consented; the count above includes everyone.
    people = models.ManyToManyField(
        "care.CareRecipient", verbose_name=_("who"), blank=True, related_name="activities"
    )
    note = models.TextField(_("note"), blank=True)

    class Meta:
        ordering = ["-on"]
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        indexes = [models.Index(fields=["on"], name="activity_on_idx")]

    def __str__(self):
        return self.title


class Attachment(models.Model):
    """A photo or a scanned form, stored under LIANXIN_HOME/attachments; see attachments.py."""

    work_order = models.ForeignKey(
        "dispatch.WorkOrder",
        verbose_name=_("work order"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="attachments",
    )
    inspection = models.ForeignKey(
        Inspection,
        verbose_name=_("inspection"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="attachments",
    )
    campaign = models.ForeignKey(
        Campaign,
        verbose_name=_("campaign"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="attachments",
    )
    activity = models.ForeignKey(
        Activity,
        verbose_name=_("activity"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="attachments",
    )
    name = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("type"), max_length=50)
    size = models.PositiveIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    # Relative to LIANXIN_HOME, so the data directory can move.
    path = models.CharField(_("stored as"), max_length=300, unique=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        ordering = ["uploaded_at"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        constraints = [
            # Exactly one owner.
            models.CheckConstraint(
                condition=(
                    Q(work_order__isnull=False)
                    & Q(inspection__isnull=True)
                    & Q(campaign__isnull=True)
                    & Q(activity__isnull=True)
                )
                | (
                    Q(work_order__isnull=True)
                    & Q(inspection__isnull=False)
                    & Q(campaign__isnull=True)
                    & Q(activity__isnull=True)
                )
                | (
                    Q(work_order__isnull=True)
                    & Q(inspection__isnull=True)
                    & Q(campaign__isnull=False)
                    & Q(activity__isnull=True)
                )
                | (
                    Q(work_order__isnull=True)
                    & Q(inspection__isnull=True)
                    & Q(campaign__isnull=True)
                    & Q(activity__isnull=False)
                ),
                name="attachment_has_one_owner",
            )
        ]

    def __str__(self):
        return self.name
