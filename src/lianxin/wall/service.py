"""What the wall screen, the map and the directory show: queries only, no HTTP."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _

from lianxin.alerts.models import ACTIVE, NOT_RESOLVED, Alert, SeverityChoices, Status
from lianxin.care.models import CareRecipient, Household, TransformerArea
from lianxin.dispatch.models import Call, WorkOrder
from lianxin.engine.findings import Kind
from lianxin.health.context import open_alerts as open_system_alerts
from lianxin.store import open_stores

log = logging.getLogger(__name__)

OPEN_ORDERS = [WorkOrder.Status.ASSIGNED, WorkOrder.Status.ARRIVED]
SEVERITIES = [SeverityChoices.CRITICAL, SeverityChoices.WARNING, SeverityChoices.INFO]
STATES = [s for s in Status if s != Status.RESOLVED]
LATEST = 5  # newest alerts listed on the wall: as many as fit at wall-size type


def _local(value, field: str) -> str:
    """obj.<field>_en for English readers when filled in, else obj.<field>."""
    from django.utils.translation import get_language

    if value is None:
        return ""
    if (get_language() or "").startswith("en"):
        english = getattr(value, f"{field}_en", "")
        if english:
            return english
    return getattr(value, field, "")


def _where(alert: Alert) -> str:
    if alert.household_id:
        return f"{_local(alert.household, 'address')}"
    return _local(alert.transformer_area, "name")


def day_start(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return timezone.make_aware(datetime.combine(local.date(), time()), local.tzinfo)


# ---- the wall screen ----------------------------------------------------------------------


def wall_figures(now: datetime | None = None) -> dict:
    """Counters by severity (alerts a person still has to work) and by state, the oldest alert
    nobody has acknowledged, and today's figures. Labels come in the reader's language."""
    now = now or timezone.now()
    unresolved = Alert.objects.filter(status__in=NOT_RESOLVED)
    by_sev = dict(
        unresolved.filter(status__in=ACTIVE)
        .values_list("severity")
        .annotate(n=Count("pk"))
        .order_by()
    )
    by_state = dict(unresolved.values_list("status").annotate(n=Count("pk")).order_by())
    oldest = (
        Alert.objects.filter(status=Status.OPEN)
        .select_related("household", "transformer_area")
        .order_by("opened_at", "pk")
        .first()
    )
    latest = (
        Alert.objects.filter(status__in=ACTIVE)
        .select_related("household", "transformer_area")
        .order_by("-opened_at", "-pk")[:LATEST]
    )
    start = day_start(now)
    done_today = WorkOrder.objects.filter(status=WorkOrder.Status.DONE, done_at__gte=start)
    return {
        "now": now.isoformat(),
        "severity": [
            {"key": s.value, "label": str(s.label), "n": by_sev.get(s.value, 0)} for s in SEVERITIES
        ],
        "states": [
            {"key": s.value, "label": str(s.label), "n": by_state.get(s.value, 0)} for s in STATES
        ],
        "oldest": None
        if oldest is None
        else {
            "id": oldest.pk,
            "kind": oldest.get_kind_display(),
            "severity": oldest.severity,
            "severity_label": oldest.get_severity_display(),
            "where": _where(oldest),
            "since": oldest.opened_at.isoformat(),
        },
        "today": [
            {
                "key": "raised",
                "label": _("alerts raised"),
                "n": Alert.objects.filter(opened_at__gte=start).count(),
            },
            {
                "key": "resolved",
                "label": _("cases closed"),
                "n": Alert.objects.filter(resolved_at__gte=start).count(),
            },
            {
                "key": "calls",
                "label": _("calls made"),
                "n": Call.objects.filter(at__gte=start).count(),
            },
            {"key": "visits", "label": _("visits done"), "n": done_today.count()},
            {
                "key": "crews_out",
                "label": _("crews out now"),
                "n": WorkOrder.objects.filter(status__in=OPEN_ORDERS).count(),
            },
        ],
        "latest": [
            {
                "id": a.pk,
                "kind": a.get_kind_display(),
                "severity": a.severity,
                "state": a.get_status_display(),
                "where": _where(a),
            }
            for a in latest
        ],
        "system_alerts": len(open_system_alerts()),
    }


# ---- the map ------------------------------------------------------------------------------


def convex_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The convex hull of (x, y) points, counter-clockwise, first point not repeated
    (Andrew's monotone chain)."""
    pts = sorted(set(points))
    if len(pts) <= 2:
        return pts

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


# An area's outline is drawn this far (in degrees, ~100 m) around its homes, so one home or a
# row of homes still makes a visible shape.
MARGIN = 0.001


def area_outline(points: list[tuple[float, float]]) -> list[list[float]]:
    """A closed ring around the homes: the hull of each home's small square."""
    grown = [
        (x + dx, y + dy) for x, y in points for dx in (-MARGIN, MARGIN) for dy in (-MARGIN, MARGIN)
    ]
    ring = [[round(x, 6), round(y, 6)] for x, y in convex_hull(grown)]
    return ring + ring[:1]


def map_data(homes) -> dict:
    """The map of `homes` (a queryset the reader may see): their transformer areas as a GeoJSON
    base layer (outlines drawn from the homes' geo points: no tile service), the homes with
    their worst open alert, and the crews' open work orders."""
    homes = homes.filter(latitude__isnull=False)
    active = (
        Alert.objects.filter(status__in=ACTIVE, household__in=homes)
        .order_by("household_id", "-severity_rank", "opened_at")
        .values_list("household_id", "pk", "severity", "kind")
    )
    worst: dict[int, tuple] = {}
    for home_id, pk, severity, kind in active:
        worst.setdefault(home_id, (pk, severity, kind))
    kinds = dict(Alert._meta.get_field("kind").choices)
    enrolled = set(
        CareRecipient.objects.filter(household__in=homes).values_list("household_id", flat=True)
    )
    # Only alerted homes carry their address: the map is polled, and a city's quiet homes
    # would make it megabytes.
    addresses = {h.pk: _local(h, "address") for h in Household.objects.filter(pk__in=worst)}
    out_homes, by_area = [], {}
    rows = homes.order_by("code").values_list(
        "pk", "code", "longitude", "latitude", "transformer_area_id"
    )
    for pk, code, lon, lat, area_id in rows.iterator(chunk_size=5000):
        point = (float(lon), float(lat))
        if area_id:
            by_area.setdefault(area_id, []).append(point)
        row = {"code": code, "value": [point[0], point[1]], "enrolled": pk in enrolled}
        alert = worst.get(pk)
        if alert is not None:
            row["alert"] = {"id": alert[0], "severity": alert[1], "kind": str(kinds.get(alert[2]))}
            row["address"] = addresses.get(pk, "")
        out_homes.append(row)
    outages = set(
        Alert.objects.filter(
            status__in=ACTIVE, kind=Kind.GRID_OUTAGE, transformer_area_id__in=by_area
        ).values_list("transformer_area_id", flat=True)
    )
    features = []
    for area in TransformerArea.objects.filter(pk__in=by_area).order_by("code"):
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "name": area.code,
                    "label": _local(area, "name"),
                    "outage": area.pk in outages,
                },
                "geometry": {"type": "Polygon", "coordinates": [area_outline(by_area[area.pk])]},
            }
        )
    orders = (
        WorkOrder.objects.filter(status__in=OPEN_ORDERS, household__in=homes)
        .select_related("assignee", "household")
        .order_by("created_at")
    )
    return {
        "areas": {"type": "FeatureCollection", "features": features},
        "homes": out_homes,
        "orders": [
            {
                "id": o.pk,
                "value": [float(o.household.longitude), float(o.household.latitude)],
                "home": o.household.code,
                "assignee": o.assignee.get_full_name() or o.assignee.get_username(),
                "status": o.get_status_display(),
            }
            for o in orders
        ],
        "labels": {
            "home": _("home"),
            "enrolled": _("enrolled resident"),
            "order": _("crew"),
            "outage": _("grid outage"),
            "critical": str(SeverityChoices.CRITICAL.label),
            "warning": str(SeverityChoices.WARNING.label),
            "info": str(SeverityChoices.INFO.label),
        },
    }


# ---- the directory ------------------------------------------------------------------------


def directory_rows(homes):
    """Homes with what a directory row shows: residents, meters, open alerts."""
    open_alerts = Alert.objects.filter(household=OuterRef("pk"), status__in=ACTIVE)
    return (
        homes.select_related("transformer_area")
        .annotate(has_open_alert=Exists(open_alerts))
        .prefetch_related(
            Prefetch(
                "care_recipients",
                queryset=CareRecipient.objects.select_related("team").order_by("pk"),
            ),
            "meters",
        )
        .order_by("code")
    )


# ---- the case page's context --------------------------------------------------------------

PREPAID_KINDS = {Kind.PREPAID_CUTOFF.value, Kind.PAYMENT_RISK.value}
PAYMENT_HISTORY = timedelta(days=365)
BALANCE_LOOKBACK = timedelta(days=60)


def previous_alerts(alert: Alert, limit: int = 20):
    """The home's other alerts, newest first, with their outcomes."""
    if alert.household_id is None:
        return Alert.objects.none()
    return (
        Alert.objects.filter(household_id=alert.household_id)
        .exclude(pk=alert.pk)
        .select_related("holder")
        .order_by("-opened_at", "-pk")[:limit]
    )


def prepaid_context(alert: Alert, now: datetime | None = None) -> dict | None:
    """Balance and payment history for a prepaid alert (cut-off or payment risk); None for
    other alerts. The figures come from the readings store's balances and payments."""
    if alert.household_id is None or alert.kind not in PREPAID_KINDS:
        return None
    now = now or timezone.now()
    meters = list(alert.household.meters.filter(prepaid=True).order_by("number"))
    accounts = sorted({m.account_number for m in alert.household.meters.all()})
    out = {"meters": meters, "balances": [], "payments": [], "unavailable": False}
    try:
        stores = open_stores(Path(settings.LIANXIN_HOME))
        if meters:
            bal = stores.balances.read([m.number for m in meters], start=now - BALANCE_LOOKBACK)
            for meter in meters:
                rows = bal.filter(pl.col("meter") == meter.number)
                if rows.height:
                    last = rows.row(rows.height - 1, named=True)
                    out["balances"].append(
                        {"meter": meter.number, "balance": _yuan(last["balance"]), "at": last["ts"]}
                    )
        if accounts:
            pay = stores.payments.read(accounts, start=now - PAYMENT_HISTORY, end=now)
            pay = pay.sort("ts", descending=True).head(20)
            out["payments"] = [
                {"at": r["ts"], "amount": _yuan(r["amount"]), "channel": r["channel"]}
                for r in pay.iter_rows(named=True)
            ]
    except (OSError, pl.exceptions.PolarsError) as exc:
        # The case page must open even if the store cannot be read; say so on the page.
        log.warning("payments of %s unreadable: %s", alert.household.code, exc)
        out["unavailable"] = True
    return out


def _yuan(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))
