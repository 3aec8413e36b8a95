"""The team's figures for a period, computed from the alert and dispatch logs.

Definitions (the ledgers and the monthly report use the same ones):

- A period is a run of whole local days [start, end) in the deployment's time zone; a record
  belongs to the period its defining time falls in, converted to local time.
- Visit: a work order that is done (any origin), counted in the period of its done_at (a visit
  from 23:40 to 00:20 counts on the day it ended). Cancelled orders are no visit.
- Repair: a visit whose outcome is "fault repaired".
- Inspection: a safety inspection done in the period (done_at).
- Activity: by its date; beneficiaries: the sum of the activities' beneficiary counts.
- Satisfaction rate: visits rated 4 or 5 out of visits with a rating (1–5).
- Response times: for alerts detected in the period, from detected_at to the first
  acknowledgement, the first call and the first arrival in the alert's event log (an alert
  acknowledged, released and acknowledged again counts its first acknowledgement). Median, and
  90th percentile by the nearest-rank method.
- Alerts by kind and outcome: alerts detected in the period; the false-alarm share of a kind is
  its resolved alerts labelled "false alarm" over its resolved alerts.
- No contact in 30 days: people with an active monitoring consent (a withdrawn consent takes them
  off) and no call to and no arrival at their home in the 30 days before the period's end (or
  now, if sooner).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Exists, Min, OuterRef, Q, Sum
from django.utils import timezone

from lianxin.alerts.models import Action, Alert, AlertEvent, KindChoices, Outcome
from lianxin.care.models import CareRecipient, Consent, Team, TransformerArea
from lianxin.dispatch.models import Call, WorkOrder
from lianxin.ledgers.models import Activity, Defect, Inspection

SATISFIED = 4  # ratings of 4 and 5 of 5 count as satisfied
NO_CONTACT_DAYS = 30


def local_tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


@dataclass(frozen=True)
class Period:
    first: date  # first local day
    last: date  # last local day, included

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        nxt = date(year + (month == 12), month % 12 + 1, 1)
        return cls(date(year, month, 1), nxt - timedelta(days=1))

    @classmethod
    def containing(cls, day: date) -> Period:
        return cls.month(day.year, day.month)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=local_tz())

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=local_tz())

    @property
    def label(self) -> str:
        if self.first.day == 1 and (self.last + timedelta(days=1)).day == 1:
            return f"{self.first:%Y-%m}"
        return f"{self.first:%Y-%m-%d} – {self.last:%Y-%m-%d}"

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


@dataclass(frozen=True)
class Scope:
    """What the figures are about: a period, and optionally one team and one transformer area."""

    period: Period
    team: Team | None = None
    area: TransformerArea | None = None

    def orders(self):
        qs = WorkOrder.objects.all()
        if self.team:
            qs = qs.filter(team=self.team)
        if self.area:
            # At a home of the area, or work on the area itself (no home).
            qs = qs.filter(
                Q(household__transformer_area=self.area)
                | Q(household__isnull=True, transformer_area=self.area)
            )
        return qs

    def alerts(self):
        qs = Alert.objects.filter(
            detected_at__gte=self.period.start, detected_at__lt=self.period.end
        )
        if self.team:
            # An alert has no team: it belongs to the team of the people at its home.
            qs = qs.filter(
                Exists(
                    CareRecipient.objects.filter(household=OuterRef("household"), team=self.team)
                )
            )
        if self.area:
            qs = qs.filter(transformer_area=self.area)
        return qs

    def inspections(self):
        qs = Inspection.objects.all()
        if self.team:
            qs = qs.filter(team=self.team)
        if self.area:
            qs = qs.filter(plan__transformer_area=self.area)
        return qs

    def activities(self):
        qs = Activity.objects.filter(on__gte=self.period.first, on__lte=self.period.last)
        if self.team:
            qs = qs.filter(team=self.team)
        if self.area:
            qs = qs.filter(transformer_area=self.area)
        return qs

    def recipients(self):
        qs = CareRecipient.objects.all()
        if self.team:
            qs = qs.filter(team=self.team)
        if self.area:
            qs = qs.filter(household__transformer_area=self.area)
        return qs


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def p90(values: list[float]) -> float | None:
    """90th percentile, nearest rank: the smallest value with at least 90 % at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def visits(scope: Scope):
    p = scope.period
    return scope.orders().filter(
        status=WorkOrder.Status.DONE, done_at__gte=p.start, done_at__lt=p.end
    )


def response_minutes(alerts, detected: dict | None = None) -> dict[str, list[float]]:
    """Minutes from detection to the first acknowledgement, call and arrival of each alert."""
    steps = {Action.ACKNOWLEDGED: "ack", Action.CALL: "call", Action.ARRIVED: "arrival"}
    if detected is None:
        detected = dict(alerts.order_by().values_list("pk", "detected_at"))
    out: dict[str, list[float]] = {name: [] for name in steps.values()}
    firsts = (
        AlertEvent.objects.filter(alert__in=alerts.order_by().values("pk"), action__in=list(steps))
        .order_by()
        .values("alert_id", "action")
        .annotate(first=Min("at"))
    )
    for row in firsts:
        minutes = (row["first"] - detected[row["alert_id"]]).total_seconds() / 60
        out[steps[row["action"]]].append(minutes)
    return out


def alerts_by_kind(rows) -> list[dict]:
    """rows: (kind, status, outcome) of each alert."""
    kinds: dict[str, dict] = {}
    for kind, status, outcome in rows:
        k = kinds.setdefault(kind, {"kind": kind, "total": 0, "resolved": 0, "outcomes": {}})
        k["total"] += 1
        if status == "resolved":
            k["resolved"] += 1
            key = outcome or "none"
            k["outcomes"][key] = k["outcomes"].get(key, 0) + 1
    labels = dict(KindChoices.choices)
    out = []
    for k in sorted(kinds.values(), key=lambda k: (-k["total"], k["kind"])):
        false = k["outcomes"].get(Outcome.FALSE_ALARM, 0)
        k["label"] = labels.get(k["kind"], k["kind"])
        k["false_alarms"] = false
        k["false_share"] = false / k["resolved"] if k["resolved"] else None
        out.append(k)
    return out


def no_contact(scope: Scope, now: datetime | None = None) -> list[int]:
    """Ids of the people under watch with no call and no visit at home in the last 30 days,
    by name.

    Read as three plain queries and joined here: a correlated NOT EXISTS over every call costs
    more than the whole dashboard should."""
    as_of = min(scope.period.end, now or timezone.now())
    since = as_of - timedelta(days=NO_CONTACT_DAYS)
    consented = Consent.objects.filter(
        care_recipient=OuterRef("pk"),
        scope=Consent.Scope.MONITORING,
        withdrawn_at__isnull=True,
        given_at__lt=as_of,
    )
    contacted = set(
        Call.objects.filter(at__gte=since, at__lt=as_of)
        .order_by()
        .values_list("household_id", flat=True)
    ) | set(
        WorkOrder.objects.filter(arrived_at__gte=since, arrived_at__lt=as_of)
        .order_by()
        .values_list("household_id", flat=True)
    )
    people = scope.recipients().filter(Exists(consented)).order_by("name", "pk")
    return [pk for pk, home in people.values_list("pk", "household_id") if home not in contacted]


def people(ids) -> list[CareRecipient]:
    found = CareRecipient.objects.select_related("household", "team").in_bulk(list(ids))
    return [found[i] for i in ids if i in found]


def figures(scope: Scope, now: datetime | None = None) -> dict:
    done = visits(scope)
    counts = done.aggregate(
        visits=Count("id"),
        repairs=Count("id", filter=Q(outcome=Outcome.FAULT_REPAIRED)),
        rated=Count("id", filter=Q(satisfaction__isnull=False)),
        satisfied=Count("id", filter=Q(satisfaction__gte=SATISFIED)),
        from_alerts=Count("id", filter=Q(source=WorkOrder.Source.ALERT)),
        from_hotline=Count("id", filter=Q(source=WorkOrder.Source.HOTLINE)),
        from_inspections=Count("id", filter=Q(source=WorkOrder.Source.INSPECTION)),
        from_campaigns=Count("id", filter=Q(source=WorkOrder.Source.CAMPAIGN)),
    )
    p = scope.period
    cancelled = (
        scope.orders()
        .filter(status=WorkOrder.Status.CANCELLED, created_at__gte=p.start, created_at__lt=p.end)
        .count()
    )
    inspections = scope.inspections().filter(done_at__gte=p.start, done_at__lt=p.end)
    defects = Defect.objects.filter(inspection__in=inspections)
    acts = scope.activities().aggregate(n=Count("id"), people=Sum("beneficiaries"))
    alerts = scope.alerts().order_by()
    rows = list(alerts.values_list("pk", "detected_at", "kind", "status", "outcome"))
    times = response_minutes(alerts, {pk: at for pk, at, *_rest in rows})
    silent = no_contact(scope, now)
    return {
        "period": p,
        "visits": counts["visits"],
        "repairs": counts["repairs"],
        "by_source": {
            "alert": counts["from_alerts"],
            "hotline": counts["from_hotline"],
            "inspection": counts["from_inspections"],
            "campaign": counts["from_campaigns"],
        },
        "cancelled": cancelled,
        "inspections": inspections.count(),
        "defects_found": defects.count(),
        "defects_fixed": defects.filter(fixed_at__isnull=False).count(),
        "activities": acts["n"],
        "beneficiaries": acts["people"] or 0,
        "rated": counts["rated"],
        "satisfied": counts["satisfied"],
        "satisfaction_rate": counts["satisfied"] / counts["rated"] if counts["rated"] else None,
        "response": {
            name: {"n": len(v), "median": median(v), "p90": p90(v)} for name, v in times.items()
        },
        "alerts": len(rows),
        "alerts_by_kind": alerts_by_kind([(k, st, o) for _pk, _at, k, st, o in rows]),
        "no_contact": len(silent),
        "no_contact_people": people(silent[:50]),
        "watched": scope.recipients()
        .filter(consents__scope=Consent.Scope.MONITORING, consents__withdrawn_at__isnull=True)
        .distinct()
        .count(),
        "daily": daily(scope, [at for _pk, at, *_rest in rows]),
    }


def daily(scope: Scope, detected: list[datetime]) -> list[tuple[date, int, int]]:
    """(local day, visits, alerts) for each day of the period: the dashboard's line chart."""
    p = scope.period
    tz = local_tz()
    by_day = {d: [0, 0] for d in p.days()}
    for at in visits(scope).order_by().values_list("done_at", flat=True):
        by_day[at.astimezone(tz).date()][0] += 1
    for at in detected:
        by_day[at.astimezone(tz).date()][1] += 1
    return [(d, v, a) for d, (v, a) in by_day.items()]
