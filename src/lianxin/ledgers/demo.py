"""A year of plausible history for the demo town, so the ledgers, the dashboard and the monthly
report show real-looking figures on first start.

Drawn from one random.Random(seed) on a fixed schedule: alerts of the kinds the demo's live feed
injects (DemoFeed.schedule, in the same proportions) at the homes of people who consented, each
worked through the case steps the duty room takes (acknowledge, call, dispatch, arrive, resolve)
with its events in the append-only log; hotline requests; welfare calls; monthly inspections of
priority estates with their defects and repairs; activities; and one flood-restoration campaign.
Figures are then computed from these records like from any others. The invented outcomes are
marked as already given to the engine (fed_back_at), so they never change a home's sensitivity.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from lianxin.alerts.models import Action, Alert, AlertEvent, Status
from lianxin.care.models import CareRecipient, Team, TransformerArea
from lianxin.dispatch.models import Call, WorkOrder
from lianxin.engine.findings import SEVERITY_RANK, Severity
from lianxin.ledgers.figures import local_tz
from lianxin.ledgers.models import (
    Activity,
    Campaign,
    CampaignDay,
    Defect,
    Inspection,
    InspectionPlan,
)

# The live feed's incident mix (lianxin.monitor.demo.DemoFeed.schedule), plus the two kinds the
# engine raises on its own over months (a voltage problem, a changed pattern).
KINDS = [
    ("no_power", 30, "critical"),
    ("high_load", 20, "warning"),
    ("inactivity", 20, "critical"),
    ("data_gap", 12, "info"),
    ("prepaid_cutoff", 8, "warning"),
    ("voltage", 5, "warning"),
    ("consumption_shift", 5, "info"),
]
# What the duty room found, per kind: (outcome, weight, needs a crew).
OUTCOMES = {
    "no_power": [
        ("fault_repaired", 50, True),
        ("real_emergency", 8, True),
        ("resident_fine", 22, False),
        ("false_alarm", 20, False),
    ],
    "high_load": [
        ("resident_fine", 55, False),
        ("real_emergency", 10, True),
        ("false_alarm", 35, False),
    ],
    "inactivity": [
        ("resident_fine", 50, False),
        ("away", 15, False),
        ("real_emergency", 5, True),
        ("false_alarm", 30, False),
    ],
    "data_gap": [("data_problem", 80, False), ("false_alarm", 20, False)],
    "prepaid_cutoff": [("resident_fine", 80, False), ("fault_repaired", 20, True)],
    "voltage": [("fault_repaired", 70, True), ("false_alarm", 30, False)],
    "consumption_shift": [
        ("resident_fine", 60, False),
        ("away", 25, False),
        ("false_alarm", 15, False),
    ],
}
REASONS = {
    "no_power": (
        "No power at home since {t}; the transformer area's other meters are fine.",
        "{t} 起家中无电；同台区其他电表正常。",
    ),
    "high_load": ("Load far above this home's usual level since {t}.", "{t} 起负荷远高于平时。"),
    "inactivity": (
        "No activity since {t}; this home is usually active by now.",
        "{t} 起无用电活动；平时此时已有活动。",
    ),
    "data_gap": ("The meter has sent no data since {t}.", "{t} 起电表无数据上报。"),
    "prepaid_cutoff": (
        "Prepaid supply cut off at {t}: balance ran out.",
        "{t} 余额不足，费控断电。",
    ),
    "voltage": ("Voltage out of range since {t}.", "{t} 起电压越限。"),
    "consumption_shift": (
        "Daily use far from this home's usual for 3 days.",
        "连续 3 天日用电量与平时差异很大。",
    ),
}
HOTLINE = [
    "厨房灯闪烁，请帮忙检查",
    "开关松动",
    "插座没电",
    "热水器跳闸",
    "帮忙交电费",
    "电表箱异响",
    "请帮忙更换灯泡",
    "空调不制冷，怀疑线路问题",
]
DONE_NOTES = [
    "已更换开关",
    "已紧固接线",
    "已更换灯泡",
    "已复位空开并检查线路",
    "已协助缴费",
    "已更换插座",
    "线路老化，已更换一段",
]
MATERIALS = ["开关 1 个", "LED 灯泡 2 只", "插座 1 个", "BV2.5 电线 5 米", "空开 1 个", ""]
CHECKLIST = ["表箱完好、加锁", "无裸露导线", "漏电保护器试跳正常", "楼道照明正常", "无私拉乱接"]
DEFECTS = ["表箱门锁损坏", "楼道灯不亮", "漏电保护器不动作", "入户线绝缘老化", "私拉电线充电"]
ACTIVITIES = [
    ("safety_talk", "用电安全进社区", "Electrical safety in the community", (20, 60)),
    ("veterans", "走访慰问老党员、老兵", "Visiting veteran Party members", (3, 10)),
    ("children", "关爱留守儿童：安全用电课", "Safety class for left-behind children", (10, 40)),
    ("governance", "参加社区议事会", "Community governance meeting", (8, 25)),
    ("one_stop", "水电气讯一站式服务", "One-stop water, power, gas and telecom day", (15, 80)),
]


@dataclass
class HistorySummary:
    alerts: int
    work_orders: int
    calls: int
    inspections: int
    activities: int
    campaigns: int


def _lognormal_minutes(rng, median, spread=0.6, low=1.0, high=600.0):
    import math

    return min(high, max(low, median * math.exp(rng.gauss(0, spread))))


class _Builder:
    def __init__(self, rng, now):
        self.rng = rng
        self.now = now
        self.alerts: list[Alert] = []
        self.events: list[list[tuple]] = []  # per alert: (at, action, from, to, actor, data)
        self.orders: list[tuple[WorkOrder, int | None]] = []  # (order, index of its alert)
        self.calls: list[tuple[Call, int | None]] = []


@transaction.atomic
def seed_history(seed: int = 2021, days: int = 365, now: datetime | None = None) -> HistorySummary:
    """Add `days` of history before `now` to a seeded demo town. Refuses to run twice."""
    if Alert.objects.filter(fed_back_at__isnull=False, evidence__history=True).exists():
        return HistorySummary(0, 0, 0, 0, 0, 0)
    rng = random.Random(seed * 7919 + 14)
    now = now or timezone.now()
    tz = local_tz()
    User = get_user_model()
    staff = {u.username: u for u in User.objects.all()}
    operators = [u for n, u in sorted(staff.items()) if n.startswith("operator")] or list(
        staff.values()
    )
    lead = staff.get("lead") or operators[0]
    teams = list(Team.objects.order_by("pk"))
    crews = {
        t.pk: list(User.objects.filter(membership__team=t).order_by("username")) for t in teams
    }
    people = list(
        CareRecipient.objects.filter(
            consents__scope="monitoring", consents__withdrawn_at__isnull=True
        )
        .select_related("household__transformer_area", "team")
        .order_by("pk")
        .distinct()
    )
    if not people or not teams:
        return HistorySummary(0, 0, 0, 0, 0, 0)
    start = now - timedelta(days=days)
    b = _Builder(rng, now)

    def crew_of(person):
        team = person.team or teams[0]
        return team, crews.get(team.pk) or [lead]

    # --- alerts, worked through the case steps ---------------------------------------------
    kinds, weights = [k for k, _w, _s in KINDS], [w for _k, w, _s in KINDS]
    severity = {k: s for k, _w, s in KINDS}
    per_person_year = 6.0  # alerts a consenting home raises in a year, all kinds together
    n_alerts = int(len(people) * per_person_year * days / 365)
    for _ in range(n_alerts):
        person = rng.choice(people)
        home = person.household
        kind = rng.choices(kinds, weights)[0]
        detected = start + timedelta(seconds=rng.uniform(0, (now - start).total_seconds() - 86400))
        began = detected - timedelta(minutes=rng.choice([15, 30, 45, 60, 90, 120]))
        t_local = began.astimezone(tz).strftime("%m-%d %H:%M")
        en, zh = REASONS[kind]
        outcome, _w, crew = rng.choices(OUTCOMES[kind], [w for _o, w, _c in OUTCOMES[kind]])[0]
        a = Alert(
            kind=kind,
            severity=severity[kind],
            severity_rank=SEVERITY_RANK[Severity(severity[kind])],
            status=Status.RESOLVED,
            key=f"{kind}|{home.code}",
            household=home,
            transformer_area=home.transformer_area,
            reason_en=en.format(t=t_local),
            reason_zh=zh.format(t=t_local),
            evidence={"history": True},
            started_at=began,
            detected_at=detected,
            last_detected_at=detected,
            opened_at=detected,
            outcome=outcome,
        )
        idx = len(b.alerts)
        b.alerts.append(a)
        ev = [(detected, Action.OPENED, Status.OPEN, Status.OPEN, None, {})]
        op = rng.choice(operators)
        median_ack = 3.0 if severity[kind] == "critical" else 8.0
        ack = detected + timedelta(minutes=_lognormal_minutes(rng, median_ack))
        ev.append((ack, Action.ACKNOWLEDGED, Status.OPEN, Status.ACKNOWLEDGED, op, {}))
        call_at = ack + timedelta(minutes=_lognormal_minutes(rng, 2.0, high=60))
        answered = rng.random() < 0.8
        result = ("needs_help" if crew else "resident_fine") if answered else "no_answer"
        call = Call(household=home, alert=a, called=person.name, at=call_at, by=op, result=result)
        b.calls.append((call, idx))
        ev.append(
            (call_at, Action.CALL, Status.ACKNOWLEDGED, Status.ACKNOWLEDGED, op, {"result": result})
        )
        state = Status.ACKNOWLEDGED
        t = call_at
        if crew or (not answered and kind == "inactivity"):
            team, members = crew_of(person)
            who = rng.choice(members)
            sent = t + timedelta(minutes=_lognormal_minutes(rng, 4.0, high=60))
            arrived = sent + timedelta(minutes=_lognormal_minutes(rng, 22.0, 0.5, 5, 240))
            done = arrived + timedelta(minutes=_lognormal_minutes(rng, 35.0, 0.5, 5, 300))
            order = WorkOrder(
                source=WorkOrder.Source.ALERT,
                alert=a,
                household=home,
                request=a.reason_zh,
                team=team,
                assignee=who,
                status=WorkOrder.Status.DONE,
                created_at=sent,
                created_by=op,
                arrived_at=arrived,
                done_at=done,
                done_note=rng.choice(DONE_NOTES) if outcome == "fault_repaired" else "老人安好",
                outcome=outcome,
                satisfaction=5 if rng.random() < 0.97 else 4,
            )
            b.orders.append((order, idx))
            ev += [
                (sent, Action.DISPATCHED, state, Status.DISPATCHED, op, {}),
                (arrived, Action.ARRIVED, Status.DISPATCHED, Status.DISPATCHED, who, {}),
                (done, Action.WORK_DONE, Status.DISPATCHED, Status.DISPATCHED, who, {}),
            ]
            state, t = Status.DISPATCHED, done
        else:
            t = t + timedelta(minutes=_lognormal_minutes(rng, 10.0, high=240))
        ev.append((t, Action.RESOLVED, state, Status.RESOLVED, op, {"outcome": outcome}))
        a.resolved_at = t
        a.fed_back_at = t
        a.holder = op
        b.events.append(ev)

    # --- hotline requests and welfare calls ------------------------------------------------
    for person in people:
        team, members = crew_of(person)
        home = person.household
        for _ in range(rng.choices([0, 1, 2, 3], [30, 40, 20, 10])[0] * days // 365):
            created = start + timedelta(seconds=rng.uniform(0, (now - start).total_seconds()))
            created = created.astimezone(tz).replace(hour=rng.randint(8, 19)).astimezone(now.tzinfo)
            if created >= now - timedelta(hours=6):
                continue
            who = rng.choice(members)
            arrived = created + timedelta(minutes=_lognormal_minutes(rng, 40.0, 0.5, 10, 300))
            done = arrived + timedelta(minutes=_lognormal_minutes(rng, 30.0, 0.5, 5, 240))
            cancelled = rng.random() < 0.04
            b.orders.append(
                (
                    WorkOrder(
                        source=WorkOrder.Source.HOTLINE,
                        household=home,
                        request=rng.choice(HOTLINE),
                        team=team,
                        assignee=who,
                        created_at=created,
                        created_by=rng.choice(operators),
                        status=WorkOrder.Status.CANCELLED if cancelled else WorkOrder.Status.DONE,
                        arrived_at=None if cancelled else arrived,
                        done_at=None if cancelled else done,
                        done_note="居民已自行解决" if cancelled else rng.choice(DONE_NOTES),
                        outcome="" if cancelled else "fault_repaired",
                        satisfaction=None if cancelled else (5 if rng.random() < 0.96 else 4),
                    ),
                    None,
                )
            )
        # A welfare call every 2-6 weeks; some people slip through (the no-contact list).
        t = start + timedelta(days=rng.uniform(0, 20))
        gap = rng.choice([14, 21, 28, 42, 60])
        while t < now - timedelta(hours=1):
            at = t.astimezone(tz).replace(hour=rng.randint(9, 17), minute=rng.randint(0, 59))
            if at.astimezone(now.tzinfo) < now:
                b.calls.append(
                    (
                        Call(
                            household=home,
                            called=person.name,
                            at=at,
                            by=rng.choice(operators),
                            result=rng.choices(
                                ["answered", "resident_fine", "no_answer"], [50, 40, 10]
                            )[0],
                            note="例行问候",
                        ),
                        None,
                    )
                )
            t += timedelta(days=gap * rng.uniform(0.8, 1.2))

    _write(b)

    # --- inspections of priority estates ---------------------------------------------------
    areas = list(TransformerArea.objects.order_by("code")[:2])
    plans = [
        InspectionPlan.objects.create(
            name="廉租房小区月度安全巡检",
            name_en="Monthly safety inspection, low-rent estate",
            team=teams[0],
            transformer_area=areas[0] if areas else None,
            community="廉租房小区",
            every_days=30,
            checklist=CHECKLIST,
            first_on=(start + timedelta(days=3)).date(),
        ),
        InspectionPlan.objects.create(
            name="重点台区双周巡检",
            name_en="Fortnightly inspection, priority transformer area",
            team=teams[-1],
            transformer_area=areas[-1] if areas else None,
            every_days=14,
            checklist=CHECKLIST[:3],
            first_on=(start + timedelta(days=7)).date(),
        ),
    ]
    n_insp = 0
    homes_by_area = {}
    for p in people:
        homes_by_area.setdefault(p.household.transformer_area_id, []).append(p)
    for plan in plans:
        members = crews.get(plan.team_id) or [lead]
        for day in plan.due_dates(start.astimezone(tz).date(), now.astimezone(tz).date()):
            began = datetime.combine(day, time(9, rng.randint(0, 50)), tzinfo=tz)
            done = began + timedelta(minutes=rng.randint(60, 150))
            if done >= now:
                continue
            results = [{"item": i, "ok": rng.random() > 0.08, "note": ""} for i in plan.checklist]
            insp = Inspection.objects.create(
                plan=plan,
                team=plan.team,
                due_on=day,
                started_at=began,
                done_at=done,
                results=results,
                note="",
            )
            insp.members.set(rng.sample(members, k=min(len(members), 2)))
            n_insp += 1
            for r in results:
                if r["ok"]:
                    continue
                nearby = homes_by_area.get(plan.transformer_area_id) or people
                home = rng.choice(nearby).household
                found = began + timedelta(minutes=rng.randint(10, 60))
                defect = Defect(
                    inspection=insp, description=rng.choice(DEFECTS), household=home, found_at=found
                )
                if rng.random() < 0.6:
                    defect.fixed_at = found + timedelta(minutes=rng.randint(5, 30))
                    defect.fixed_note = "现场处理"
                else:
                    created = done + timedelta(hours=rng.randint(2, 30))
                    if created + timedelta(hours=4) < now:
                        who = rng.choice(members)
                        order = WorkOrder.objects.create(
                            source=WorkOrder.Source.INSPECTION,
                            household=home,
                            request=defect.description,
                            team=plan.team,
                            assignee=who,
                            created_at=created,
                            created_by=lead,
                            status=WorkOrder.Status.DONE,
                            arrived_at=created + timedelta(minutes=45),
                            done_at=created + timedelta(minutes=100),
                            done_note=rng.choice(DONE_NOTES),
                            outcome="fault_repaired",
                            satisfaction=5,
                        )
                        defect.repair_order = order
                        defect.fixed_at = order.done_at
                defect.save()

    # --- activities ------------------------------------------------------------------------
    n_act = 0
    day = start.astimezone(tz).date()
    last = now.astimezone(tz).date()
    while day < last:
        day += timedelta(days=rng.choice([2, 3, 4, 5]))
        if day >= last:
            break
        kind, title, title_en, (lo, hi) = rng.choice(ACTIVITIES)
        team = rng.choice(teams)
        act = Activity.objects.create(
            kind=kind,
            title=title,
            title_en=title_en,
            team=team,
            on=day,
            place=rng.choice(["苏祠社区活动室", "裕丰社区广场", "湖滨社区服务站", "廉租房小区"]),
            transformer_area=rng.choice(areas) if areas else None,
            beneficiaries=rng.randint(lo, hi),
        )
        act.members.set(rng.sample(crews.get(team.pk) or [lead], k=1))
        act.people.set(rng.sample(people, k=min(len(people), rng.randint(0, 3))))
        n_act += 1

    # --- one campaign: emergency restoration after a flood ----------------------------------
    july = date(now.astimezone(tz).year, 7, 20)
    if july + timedelta(days=8) > last:
        july = date(july.year - 1, 7, 20)
    campaign = Campaign.objects.create(
        name="“7·20”暴雨抢修保供电",
        name_en="Flood restoration after the 20 July rainstorm",
        team=teams[0],
        starts_on=july,
        ends_on=july + timedelta(days=7),
        place="东坡区城东片区",
        other_members=56,
        note="62 名队员连续奋战 8 天 8 夜，恢复 4 万余户供电；其中一条路上万户 9 小时复电。",
    )
    campaign.members.set([u for u in staff.values() if not u.is_superuser][:6])
    campaign.transformer_areas.set(areas)
    restored = [1200, 6800, 10400, 9100, 6300, 4200, 1900, 600]
    for i, n in enumerate(restored):
        CampaignDay.objects.create(
            campaign=campaign,
            day=july + timedelta(days=i),
            households_restored=n,
            members_out=62 - abs(3 - i) * 2,
        )
    for person in rng.sample(people, k=min(len(people), 12)):
        team, members = crew_of(person)
        created = datetime.combine(
            july + timedelta(days=rng.randint(0, 6)), time(rng.randint(7, 20)), tzinfo=tz
        )
        order = WorkOrder.objects.create(
            source=WorkOrder.Source.CAMPAIGN,
            household=person.household,
            request="灾后入户检查用电安全",
            team=team,
            assignee=rng.choice(members),
            created_at=created,
            created_by=lead,
            status=WorkOrder.Status.DONE,
            arrived_at=created + timedelta(minutes=50),
            done_at=created + timedelta(minutes=90),
            done_note="已检查入户线路并恢复供电",
            outcome="fault_repaired",
            satisfaction=5,
        )
        campaign.work_orders.add(order)

    return HistorySummary(
        alerts=len(b.alerts),
        work_orders=WorkOrder.objects.count(),
        calls=Call.objects.count(),
        inspections=n_insp,
        activities=n_act,
        campaigns=1,
    )


def _write(b: _Builder):
    """Bulk writes: a year for 10,000 homes is hundreds of thousands of rows."""
    Alert.objects.bulk_create(b.alerts, batch_size=2000)
    events = [
        AlertEvent(
            alert=a, at=at, action=action, from_status=frm, to_status=to, actor=actor, data=data
        )
        for a, ev in zip(b.alerts, b.events, strict=True)
        for at, action, frm, to, actor, data in ev
    ]
    orders = []
    for order, idx in b.orders:
        if idx is not None:
            order.alert = b.alerts[idx]
        orders.append(order)
    WorkOrder.objects.bulk_create(orders, batch_size=2000)
    by_alert = {o.alert_id: o.pk for o in orders if o.alert_id}
    for e in events:
        if e.action in (Action.DISPATCHED, Action.ARRIVED, Action.WORK_DONE):
            e.data = {"work_order": by_alert.get(e.alert_id)}
    AlertEvent.objects.bulk_create(events, batch_size=5000)
    calls = []
    for call, idx in b.calls:
        if idx is not None:
            call.alert = b.alerts[idx]
        calls.append(call)
    Call.objects.bulk_create(calls, batch_size=5000)
