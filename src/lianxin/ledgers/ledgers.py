"""The three ledgers (三本台账) as rows: the pages, the CSV and the XLSX exports read the same.

Each ledger has its columns (key, label) and yields one dict per row, newest first. Times are
shown in the deployment's local time, durations in whole minutes.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime, time

from django.db.models import Count, Exists, Min, OuterRef, Q, Subquery
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from lianxin.alerts.models import Action, AlertEvent, KindChoices
from lianxin.care.models import Consent, EmergencyContact, Meter
from lianxin.dispatch.models import Call, WorkOrder
from lianxin.ledgers.figures import Scope, local_tz
from lianxin.ledgers.models import Inspection


def _local(at: datetime | None) -> str:
    return at.astimezone(local_tz()).strftime("%Y-%m-%d %H:%M") if at else ""


def _minutes(later, earlier) -> int | None:
    if later is None or earlier is None:
        return None
    return round((later - earlier).total_seconds() / 60)


def _who(user) -> str:
    return user.get_full_name() or user.get_username() if user else ""


def _loc(obj, field):
    from lianxin.alerts.templatetags.lianxin import loc

    return loc(obj, field)


@dataclass
class Page:
    rows: list[dict]
    total: int


class Ledger:
    slug = ""
    title = ""
    columns: list[tuple[str, object]] = []
    types: list[tuple[str, object]] = []

    def sources(self, scope: Scope, type_: str) -> list[tuple[object, str]]:
        """(queryset, name of its time field) per kind of row; rows are newest first."""
        raise NotImplementedError

    def row(self, obj) -> dict:
        raise NotImplementedError

    def page(self, scope: Scope, type_: str, number: int, size: int = 100) -> Page:
        """One page of rows. The merge reads only (time, id) pairs; the heavy columns (first
        acknowledgement, members, …) are read for the page's rows alone."""
        sources = self.sources(scope, type_)
        total = sum(qs.count() for qs, _f in sources)
        want = number * size
        keys = []
        for i, (qs, field) in enumerate(sources):
            for at, pk in qs.order_by(f"-{field}", "-pk").values_list(field, "pk")[:want]:
                keys.append((_when(at), i, pk))
        keys.sort(reverse=True)
        chosen = keys[want - size : want]
        objs = {}
        for i, (qs, _field) in enumerate(sources):
            pks = [pk for _at, j, pk in chosen if j == i]
            if pks:
                objs.update({(i, o.pk): o for o in qs.filter(pk__in=pks)})
        return Page([self.row(objs[(i, pk)]) for _at, i, pk in chosen], total)

    def all_rows(self, scope: Scope, type_: str):
        sources = self.sources(scope, type_)
        merged = heapq.merge(
            *[
                _keyed(qs.order_by(f"-{f}", "-pk").iterator(chunk_size=2000), f)
                for qs, f in sources
            ],
            key=lambda t: t[0],
            reverse=True,
        )
        for _t, o in merged:
            yield self.row(o)


def _when(at) -> datetime:
    # An activity has a date, not a time: it sorts at the start of its local day.
    if isinstance(at, datetime):
        return at
    return datetime.combine(at, time(0), tzinfo=local_tz())


def _keyed(objs, field):
    return ((_when(getattr(o, field)), o) for o in objs)


class RecipientLedger(Ledger):
    slug = "recipients"
    title = _("Care-recipient ledger")
    columns = [
        ("name", pgettext_lazy("person", "name")),
        ("birth_year", _("birth year")),
        ("household", _("household code")),
        ("address", _("address")),
        ("area", _("transformer area")),
        ("team", _("team")),
        ("consent", _("consent")),
        ("contacts", _("emergency contacts")),
        ("covered", _("covered")),
        ("last_contact", _("last contact")),
        ("last_visit", _("last visit")),
        ("risk_notes", _("risk notes")),
    ]
    types = [
        ("watched", _("consent to monitoring")),
        ("withdrawn", _("consent withdrawn")),
        ("none", _("no consent")),
    ]

    def sources(self, scope, type_):
        active = Consent.objects.filter(
            care_recipient=OuterRef("pk"), scope="monitoring", withdrawn_at__isnull=True
        )
        withdrawn = Consent.objects.filter(
            care_recipient=OuterRef("pk"), scope="monitoring", withdrawn_at__isnull=False
        )
        last_call = Call.objects.filter(household=OuterRef("household")).order_by("-at")
        last_arrival = WorkOrder.objects.filter(
            household=OuterRef("household"), arrived_at__isnull=False
        ).order_by("-arrived_at")
        last_visit = WorkOrder.objects.filter(
            household=OuterRef("household"), status="done"
        ).order_by("-done_at")
        metered = Meter.objects.filter(household=OuterRef("household"), active=True)
        qs = (
            scope.recipients()
            .select_related("household__transformer_area", "team")
            .annotate(
                consented=Exists(active),
                withdrew=Exists(withdrawn),
                metered=Exists(metered),
                n_contacts=Subquery(
                    EmergencyContact.objects.filter(care_recipient=OuterRef("pk"))
                    .order_by()
                    .values("care_recipient")
                    .annotate(n=Count("pk"))
                    .values("n")[:1]
                ),
                last_call=Subquery(last_call.values("at")[:1]),
                last_arrival=Subquery(last_arrival.values("arrived_at")[:1]),
                last_visit=Subquery(last_visit.values("done_at")[:1]),
            )
        )
        if type_ == "watched":
            qs = qs.filter(consented=True)
        elif type_ == "withdrawn":
            qs = qs.filter(consented=False, withdrew=True)
        elif type_ == "none":
            qs = qs.filter(consented=False, withdrew=False)
        # Newest enrolment first, as the other ledgers are newest first.
        return [(qs, "enrolled_on")]

    def row(self, p):
        contacts = [c for c in [p.last_call, p.last_arrival] if c]
        consent = (
            _("given")
            if p.consented
            else _("withdrawn")
            if p.withdrew
            else pgettext_lazy("consent", "none")
        )
        return {
            "name": _loc(p, "name"),
            "birth_year": p.birth_year,
            "household": p.household.code,
            "address": _loc(p.household, "address"),
            "area": p.household.transformer_area.code if p.household.transformer_area else "",
            "team": _loc(p.team, "name") if p.team else "",
            "consent": str(consent),
            "contacts": p.n_contacts or 0,
            "covered": str(_("yes") if p.consented and p.metered else _("no")),
            "last_contact": _local(max(contacts)) if contacts else "",
            "last_visit": _local(p.last_visit),
            "risk_notes": p.risk_notes,
        }


def _first(action):
    return Subquery(
        AlertEvent.objects.filter(alert=OuterRef("pk"), action=action)
        .order_by()
        .values("alert")
        .annotate(first=Min("at"))
        .values("first")[:1]
    )


class DemandLedger(Ledger):
    slug = "demand"
    title = _("Service-demand ledger")
    columns = [
        ("ref", _("ref.")),
        ("type", _("type")),
        ("at", _("detected or received")),
        ("household", _("household code")),
        ("address", _("address")),
        ("area", _("transformer area")),
        ("ack_min", _("to acknowledgement (min)")),
        ("call_min", _("to first call (min)")),
        ("arrival_min", _("to arrival (min)")),
        ("status", _("status")),
        ("outcome", _("outcome")),
    ]
    types = (
        [("alert", _("all alerts"))]
        + list(KindChoices.choices)
        + [
            (WorkOrder.Source.HOTLINE, WorkOrder.Source.HOTLINE.label),
            (WorkOrder.Source.INSPECTION, WorkOrder.Source.INSPECTION.label),
            (WorkOrder.Source.CAMPAIGN, WorkOrder.Source.CAMPAIGN.label),
        ]
    )

    def sources(self, scope, type_):
        p = scope.period
        out = []
        alert_kinds = set(KindChoices.values)
        if type_ in ("", "alert") or type_ in alert_kinds:
            alerts = (
                scope.alerts()
                .select_related("household", "transformer_area")
                .annotate(
                    first_ack=_first(Action.ACKNOWLEDGED),
                    first_call=_first(Action.CALL),
                    first_arrival=_first(Action.ARRIVED),
                )
            )
            if type_ in alert_kinds:
                alerts = alerts.filter(kind=type_)
            out.append((alerts, "detected_at"))
        sources = [s for s in WorkOrder.Source.values if s != WorkOrder.Source.ALERT]
        if type_ == "" or type_ in sources:
            orders = (
                scope.orders()
                .filter(created_at__gte=p.start, created_at__lt=p.end)
                .filter(source__in=[type_] if type_ else sources)
                .select_related("household__transformer_area", "transformer_area")
            )
            out.append((orders, "created_at"))
        return out

    def row(self, o):
        if isinstance(o, WorkOrder):
            return {
                "ref": f"W{o.pk}",
                "type": str(o.get_source_display()),
                "at": _local(o.created_at),
                "household": o.household.code if o.household else "",
                "address": _loc(o.household, "address") if o.household else o.place,
                "area": o.area.code if o.area else "",
                "ack_min": None,
                "call_min": None,
                "arrival_min": _minutes(o.arrived_at, o.created_at),
                "status": str(o.get_status_display()),
                "outcome": str(o.get_outcome_display()) if o.outcome else "",
            }
        return {
            "ref": f"A{o.pk}",
            "type": str(o.get_kind_display()),
            "at": _local(o.detected_at),
            "household": o.household.code if o.household else "",
            "address": _loc(o.household, "address")
            if o.household
            else _loc(o.transformer_area, "name"),
            "area": o.transformer_area.code if o.transformer_area else "",
            "ack_min": _minutes(o.first_ack, o.detected_at),
            "call_min": _minutes(o.first_call, o.detected_at),
            "arrival_min": _minutes(o.first_arrival, o.detected_at),
            "status": str(o.get_status_display()),
            "outcome": str(o.get_outcome_display()) if o.outcome else "",
        }


class RecordLedger(Ledger):
    slug = "records"
    title = _("Service-record ledger")
    columns = [
        ("ref", _("ref.")),
        ("type", _("type")),
        ("at", _("date")),
        ("place", _("place")),
        ("team", _("team")),
        ("members", _("members")),
        ("what", _("what was done")),
        ("materials", _("materials")),
        ("beneficiaries", _("beneficiaries")),
        ("satisfaction", _("satisfaction")),
    ]
    types = [
        ("visit", _("home visit")),
        ("repair", _("repair")),
        ("inspection", _("safety inspection")),
        ("activity", _("activity")),
    ]

    def sources(self, scope, type_):
        p = scope.period
        out = []
        if type_ in ("", "visit", "repair"):
            done = (
                scope.orders()
                .filter(status="done", done_at__gte=p.start, done_at__lt=p.end)
                .select_related("household", "team", "assignee", "detail")
                .prefetch_related("detail__members")
            )
            if type_ == "repair":
                done = done.filter(outcome="fault_repaired")
            elif type_ == "visit":
                done = done.exclude(outcome="fault_repaired")
            out.append((done, "done_at"))
        if type_ in ("", "inspection"):
            insp = (
                scope.inspections()
                .filter(done_at__gte=p.start, done_at__lt=p.end)
                .select_related("plan", "team")
                .prefetch_related("members")
                .annotate(
                    n_defects=Count("defects", distinct=True),
                    n_fixed=Count(
                        "defects", filter=Q(defects__fixed_at__isnull=False), distinct=True
                    ),
                )
            )
            out.append((insp, "done_at"))
        if type_ in ("", "activity"):
            acts = (
                scope.activities()
                .select_related("team")
                .prefetch_related("members", "people__consents")
            )
            out.append((acts, "on"))
        return out

    def row(self, o):
        if isinstance(o, WorkOrder):
            members = [o.assignee]
            detail = o.detail if hasattr(o, "detail") else None
            if detail:
                members += [m for m in detail.members.all() if m.pk != o.assignee_id]
            repair = o.outcome == "fault_repaired"
            return {
                "ref": f"W{o.pk}",
                "type": str(_("repair") if repair else _("home visit")),
                "at": _local(o.done_at),
                "place": _loc(o.household, "address") if o.household else o.place,
                "team": _loc(o.team, "name"),
                "members": "、".join(_who(m) for m in members),
                "what": o.done_note or o.request,
                "materials": detail.materials if detail else "",
                "beneficiaries": 1,
                "satisfaction": o.satisfaction,
            }
        if isinstance(o, Inspection):
            ok = sum(1 for r in o.results if r.get("ok"))
            return {
                "ref": f"I{o.pk}",
                "type": str(_("safety inspection")),
                "at": _local(o.done_at),
                "place": _loc(o.plan, "name"),
                "team": _loc(o.team, "name"),
                "members": "、".join(_who(m) for m in o.members.all()),
                "what": str(
                    _("%(ok)d of %(n)d items in order; %(found)d defects, %(fixed)d fixed")
                    % {"ok": ok, "n": len(o.results), "found": o.n_defects, "fixed": o.n_fixed}
                ),
                "materials": "",
                "beneficiaries": None,
                "satisfaction": None,
            }
        named = [p for p in o.people.all() if p.has_consent]
        what = _loc(o, "title")
        if named:
            what = f"{what} ({'、'.join(_loc(p, 'name') for p in named)})"
        return {
            "ref": f"E{o.pk}",
            "type": str(o.get_kind_display()),
            "at": f"{o.on:%Y-%m-%d}",
            "place": o.place,
            "team": _loc(o.team, "name"),
            "members": "、".join(_who(m) for m in o.members.all()),
            "what": what,
            "materials": "",
            "beneficiaries": o.beneficiaries,
            "satisfaction": None,
        }


LEDGERS = {cls.slug: cls() for cls in (RecipientLedger, DemandLedger, RecordLedger)}
