"""Who Lianxin watches over, where they live, which meters tell about their home, and who helps.

Names follow the glossary in DESIGN.md: transformer area (台区), feeder (馈线), household,
meter (表号 meter number, 户号 account number), care recipient (特别亲人), consent, emergency
contact, team.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

phone_validator = RegexValidator(
    r"^\+?[0-9][0-9 \-]{4,19}$", _("Enter a phone number of digits, spaces and dashes.")
)


# The household code rule (every entry point: admin, forms, `import --register-unknown`, seed).
# A code appears in URLs (/households/<code>/), alert keys, exports and the engine's state, so:
# letters of any script, digits, "_" and "-", with single "." only between them; 1-64 characters.
# No "/", "..", "?", "#", spaces or control characters.
HOUSEHOLD_CODE_RE = r"^\w[\w-]*(?:\.[\w-]+)*\Z"
household_code_validator = RegexValidator(
    HOUSEHOLD_CODE_RE,
    _(
        "A household code is letters, digits, '_' and '-', with single '.' between them "
        "(no '/', '..', '?', '#', spaces or control characters)."
    ),
    code="bad_household_code",
)


def valid_household_code(code: str) -> bool:
    try:
        household_code_validator(code)
    except ValidationError:
        return False
    return 0 < len(code) <= 64


class Feeder(models.Model):
    code = models.CharField(_("feeder code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    substation = models.CharField(_("substation"), max_length=100, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("feeder")
        verbose_name_plural = _("feeders")

    def __str__(self):
        return f"{self.name} ({self.code})"


class TransformerArea(models.Model):
    code = models.CharField(_("transformer area code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    feeder = models.ForeignKey(
        Feeder,
        verbose_name=_("feeder"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="transformer_areas",
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("transformer area")
        verbose_name_plural = _("transformer areas")

    def __str__(self):
        return f"{self.name} ({self.code})"


class Household(models.Model):
    # The stable id the engine and the readings store use for this home (household_id). It never
    # changes once saved: the engine's learned routine, the alerts' keys and the findings history
    # are all filed under it, and a rename would orphan them (and once stopped all alerting).
    # What people read and may change is the address (and community).
    code = models.CharField(
        _("household code"),
        max_length=64,
        unique=True,
        validators=[household_code_validator],
        help_text=_("Fixed once saved: the address is what may change."),
    )
    address = models.CharField(_("address"), max_length=200)
    address_en = models.CharField(_("address (English)"), max_length=200, blank=True)
    community = models.CharField(_("community"), max_length=100, blank=True)
    transformer_area = models.ForeignKey(
        TransformerArea,
        verbose_name=_("transformer area"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="households",
    )
    latitude = models.DecimalField(
        _("latitude"),
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    longitude = models.DecimalField(
        _("longitude"),
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["code"]
        verbose_name = _("household")
        verbose_name_plural = _("households")
        constraints = [
            models.CheckConstraint(
                condition=(Q(latitude__isnull=True) & Q(longitude__isnull=True))
                | (Q(latitude__isnull=False) & Q(longitude__isnull=False)),
                name="household_geo_point_complete",
                violation_error_message=_("Give both latitude and longitude, or neither."),
            )
        ]

    def __str__(self):
        return self.address

    def save(self, *args, **kwargs):
        if not valid_household_code(self.code):
            raise ValidationError({"code": household_code_validator.message})
        if self.pk is not None:
            old = Household.objects.filter(pk=self.pk).values_list("code", flat=True).first()
            if old is not None and old != self.code:
                raise ValidationError(
                    {"code": _("A household code cannot change: edit the address instead.")}
                )
        super().save(*args, **kwargs)


class Meter(models.Model):
    class Kind(models.TextChoices):
        ELECTRICITY = "electricity", _("electricity")
        WATER = "water", _("water")
        GAS = "gas", _("gas")

    INTERVAL_CHOICES = [
        (1, _("1 minute")),
        (15, _("15 minutes")),
        (30, _("30 minutes")),
        (60, _("60 minutes")),
    ]

    number = models.CharField(_("meter number"), max_length=32, unique=True)  # 表号
    account_number = models.CharField(_("account number"), max_length=32, db_index=True)  # 户号
    household = models.ForeignKey(
        Household, verbose_name=_("household"), on_delete=models.PROTECT, related_name="meters"
    )
    kind = models.CharField(
        _("kind"), max_length=16, choices=Kind.choices, default=Kind.ELECTRICITY
    )
    interval_minutes = models.PositiveSmallIntegerField(
        _("interval (minutes)"), choices=INTERVAL_CHOICES, default=15
    )
    prepaid = models.BooleanField(_("prepaid"), default=False)  # 费控 / 预付费
    # The smallest step of its register readings (示值, e.g. 0.01 kWh), set by the import of
    # register files: interval energy taken from them is a multiple of it, so a zero there
    # means "less than one step", which the engine must not read as no supply at once.
    resolution_kwh = models.FloatField(
        _("register resolution (kWh)"), null=True, blank=True,
        help_text=_("Set by imports of register readings (示值); empty for interval meters."),
    )  # fmt: skip
    installed_on = models.DateField(_("installed on"), null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["number"]
        verbose_name = _("meter")
        verbose_name_plural = _("meters")
        constraints = [
            models.CheckConstraint(
                condition=Q(interval_minutes__in=[1, 15, 30, 60]), name="meter_interval_known"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["electricity", "water", "gas"]), name="meter_kind_known"
            ),
        ]

    def __str__(self):
        return f"{self.number} ({self.get_kind_display()})"


def with_replaced(meters):
    """Active meters plus those a 换表 replaced: their readings are the household's history
    (the engine and the chart judge and draw a household across the change)."""
    return meters.filter(Q(active=True) | Q(replaced_by__isnull=False)).distinct()


class MeterReplacement(models.Model):
    """A meter replacement (换表): the old meter came off the wall at `replaced_at` reading
    `old_final`, the new one went on reading `new_initial`. The household's history continues
    across the two: the interval across the change gets the energy of both parts, the engine
    judges the household on whichever meter reports, and the chart shows both."""

    household = models.ForeignKey(
        Household, verbose_name=_("household"), on_delete=models.PROTECT, related_name="+"
    )
    old_meter = models.ForeignKey(
        Meter, verbose_name=_("old meter"), on_delete=models.PROTECT, related_name="replaced_by"
    )
    new_meter = models.ForeignKey(
        Meter, verbose_name=_("new meter"), on_delete=models.PROTECT, related_name="replaces"
    )
    replaced_at = models.DateTimeField(_("replaced at"))
    old_final = models.FloatField(_("old meter's final register (kWh)"))
    new_initial = models.FloatField(_("new meter's initial register (kWh)"))
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        ordering = ["-replaced_at"]
        verbose_name = _("meter replacement")
        verbose_name_plural = _("meter replacements")
        constraints = [
            # One record per replacement: a re-imported 换表 file updates it.
            models.UniqueConstraint(fields=["old_meter", "new_meter"], name="one_replacement"),
            models.CheckConstraint(
                condition=Q(old_final__gte=0) & Q(new_initial__gte=0),
                name="replacement_registers_not_negative",
            ),
        ]

    def __str__(self):
        return f"{self.old_meter.number} → {self.new_meter.number}"


class Team(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="Membership",
        related_name="teams",
        verbose_name=_("members"),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self):
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, verbose_name=_("team"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, verbose_name=_("user")
    )
    phone = models.CharField(_("phone"), max_length=20, blank=True, validators=[phone_validator])
    joined_on = models.DateField(_("joined on"), default=timezone.localdate)

    class Meta:
        verbose_name = _("team membership")
        verbose_name_plural = _("team memberships")
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_once_per_team")
        ]

    def __str__(self):
        return f"{self.user} @ {self.team}"


class CareRecipient(models.Model):
    """特别亲人: a person enrolled for energy-use diagnosis and care."""

    class Sensitivity(models.TextChoices):
        LOW = "low", _("low (fewer alerts)")
        NORMAL = "normal", _("normal")
        HIGH = "high", _("high (alert sooner)")

    # A person's name (姓名), not a thing's (名称).
    name = models.CharField(pgettext_lazy("person", "name"), max_length=100)
    name_en = models.CharField(
        pgettext_lazy("person", "name (English)"), max_length=100, blank=True
    )
    birth_year = models.PositiveSmallIntegerField(
        _("birth year"), validators=[MinValueValidator(1900), MaxValueValidator(2100)]
    )
    phone = models.CharField(_("phone"), max_length=20, blank=True, validators=[phone_validator])
    household = models.ForeignKey(
        Household,
        verbose_name=_("household"),
        on_delete=models.PROTECT,
        related_name="care_recipients",
    )
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="care_recipients",
    )
    risk_notes = models.TextField(_("risk notes"), blank=True)
    # Per-person settings the engine reads.
    sensitivity = models.CharField(
        _("sensitivity"), max_length=8, choices=Sensitivity.choices, default=Sensitivity.NORMAL
    )
    usual_wake_time = models.TimeField(_("usual wake time"), null=True, blank=True)
    quiet_hours_start = models.TimeField(_("quiet hours start"), null=True, blank=True)
    quiet_hours_end = models.TimeField(_("quiet hours end"), null=True, blank=True)
    enrolled_on = models.DateField(_("enrolled on"), default=timezone.localdate)

    class Meta:
        ordering = ["name"]
        verbose_name = _("care recipient")
        verbose_name_plural = _("care recipients")
        constraints = [
            models.CheckConstraint(
                condition=Q(birth_year__gte=1900) & Q(birth_year__lte=2100),
                name="care_recipient_birth_year_plausible",
            ),
            models.CheckConstraint(
                condition=(Q(quiet_hours_start__isnull=True) & Q(quiet_hours_end__isnull=True))
                | (Q(quiet_hours_start__isnull=False) & Q(quiet_hours_end__isnull=False)),
                name="care_recipient_quiet_hours_complete",
                violation_error_message=_("Give both ends of the quiet hours, or neither."),
            ),
        ]

    def __str__(self):
        return self.name

    def active_consents(self):
        return self.consents.filter(withdrawn_at__isnull=True)

    @property
    def has_consent(self) -> bool:
        # From consents.all(): pages that list residents prefetch them.
        return any(c.active for c in self.consents.all())


class Consent(models.Model):
    """A consent record. Withdrawal is written onto the record; records are never deleted."""

    class Scope(models.TextChoices):
        MONITORING = "monitoring", _("energy-use monitoring and care")
        FAMILY = "family", _("notify family members")
        SHARING = "sharing", _("share with the community care team")

    care_recipient = models.ForeignKey(
        CareRecipient,
        verbose_name=_("care recipient"),
        on_delete=models.PROTECT,
        related_name="consents",
    )
    scope = models.CharField(_("scope"), max_length=16, choices=Scope.choices)
    given_at = models.DateTimeField(_("given at"))
    given_by = models.CharField(
        _("given by"), max_length=100, help_text=_("The resident, or who signed for them.")
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawn_by = models.CharField(_("withdrawn by"), max_length=100, blank=True)
    withdrawal_note = models.TextField(_("withdrawal note"), blank=True)

    class Meta:
        ordering = ["-given_at"]
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.CheckConstraint(
                condition=Q(withdrawn_at__isnull=True) | Q(withdrawn_at__gte=models.F("given_at")),
                name="consent_withdrawn_after_given",
                violation_error_message=_("Consent cannot be withdrawn before it was given."),
            ),
            # At most one open consent per person and scope: a second one would make
            # "withdraw" ambiguous.
            models.UniqueConstraint(
                fields=["care_recipient", "scope"],
                condition=Q(withdrawn_at__isnull=True),
                name="consent_one_open_per_scope",
            ),
        ]

    def __str__(self):
        return f"{self.care_recipient} · {self.get_scope_display()}"

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None

    def withdraw(self, by: str, note: str = "", at=None):
        if self.withdrawn_at is not None:
            raise ValidationError(_("This consent was already withdrawn."))
        self.withdrawn_at = at or timezone.now()
        self.withdrawn_by = by
        self.withdrawal_note = note
        self.full_clean()
        self.save(update_fields=["withdrawn_at", "withdrawn_by", "withdrawal_note"])

    def delete(self, *args, **kwargs):
        raise ValidationError(_("Consent records are kept: withdraw the consent instead."))


class EmergencyContact(models.Model):
    class NotifyBy(models.TextChoices):
        PHONE = "phone", _("phone call")
        SMS = "sms", _("text message")
        WECHAT = "wechat", _("WeChat")
        NONE = "none", _("do not notify")

    care_recipient = models.ForeignKey(
        CareRecipient,
        verbose_name=_("care recipient"),
        on_delete=models.CASCADE,
        related_name="contacts",
    )
    name = models.CharField(pgettext_lazy("person", "name"), max_length=100)
    relation = models.CharField(_("relation"), max_length=50)
    phone = models.CharField(_("phone"), max_length=20, validators=[phone_validator])
    notify_by = models.CharField(
        _("notify by"), max_length=8, choices=NotifyBy.choices, default=NotifyBy.PHONE
    )
    priority = models.PositiveSmallIntegerField(_("priority"), default=1)

    class Meta:
        ordering = ["care_recipient", "priority", "id"]
        verbose_name = _("emergency contact")
        verbose_name_plural = _("emergency contacts")

    def __str__(self):
        return f"{self.name} ({self.relation})"
