"""A small, fully known set of records for October 2026 (Asia/Shanghai), whose figures are
counted by hand in test_figures.py. Every time is given in local time."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from lianxin.alerts.models import Action, Alert, Status
from lianxin.care.models import (
    CareRecipient,
    Consent,
    EmergencyContact,
    Household,
    Membership,
    Team,
    TransformerArea,
)
from lianxin.care.roles import Role, ensure_role_groups
from lianxin.dispatch.models import Call, WorkOrder
from lianxin.ledgers.models import Activity, Defect, Inspection, InspectionPlan

TZ = ZoneInfo("Asia/Shanghai")
PASSWORD = "known-records"


def local(*args) -> datetime:
    return datetime(*args, tzinfo=TZ)


def user(name, role, team=None):
    u = get_user_model().objects.create_user(name, password=PASSWORD, first_name=name.title())
    u.groups.add(Group.objects.get(name=role))
    if team:
        Membership.objects.create(team=team, user=u)
    return u


def order(
    home,
    team,
    who,
    by,
    created,
    *,
    arrived=None,
    done=None,
    outcome="",
    score=None,
    source="hotline",
    alert=None,
    cancelled=False,
):
    status = "cancelled" if cancelled else "done" if done else "arrived" if arrived else "assigned"
    return WorkOrder.objects.create(
        source=source,
        alert=alert,
        household=home,
        request="灯不亮",
        team=team,
        assignee=who,
        created_by=by,
        created_at=created,
        arrived_at=arrived,
        done_at=done,
        status=status,
        outcome=outcome,
        satisfaction=score,
    )


def alert(home, kind, detected, steps=(), outcome=""):
    """An alert detected at `detected` with (minutes after detection, action, to_status) steps."""
    a = Alert.objects.create(
        kind=kind,
        severity="critical",
        key=f"{kind}|{home.code}|{detected:%m%d%H%M}",
        household=home,
        transformer_area=home.transformer_area,
        reason_en="r",
        reason_zh="r",
        started_at=detected - timedelta(minutes=30),
        detected_at=detected,
        last_detected_at=detected,
        opened_at=detected,
    )
    a.log(Action.OPENED, at=detected)
    for minutes, action, to in steps:
        if to == Status.RESOLVED:
            a.outcome = outcome
        at = detected + timedelta(minutes=minutes)
        if to is None:
            a.log(action, at=at)
        else:
            a.transition(to, action=action, at=at)
    return a


def known_records():
    """Build the records; returns a namespace of what the tests refer to."""
    ensure_role_groups()
    area = TransformerArea.objects.create(code="TA1", name="三苏路1号台区")
    area2 = TransformerArea.objects.create(code="TA2", name="湖滨路1号台区")
    t1 = Team.objects.create(name="连心桥服务队", name_en="Lianxin Bridge Service Team")
    t2 = Team.objects.create(name="湖滨服务队", name_en="Hubin Service Team")
    lead = user("lead", Role.TEAM_LEAD, t1)
    field = user("field", Role.FIELD_MEMBER, t1)
    field2 = user("field2", Role.FIELD_MEMBER, t2)
    homes, people = [], []
    for i in range(1, 6):
        h = Household.objects.create(
            code=f"H{i}", address=f"三苏路{i}号", transformer_area=area2 if i == 4 else area
        )
        homes.append(h)
        p = CareRecipient.objects.create(
            name=f"老人{i}", birth_year=1940 + i, household=h, team=t2 if i == 4 else t1
        )
        people.append(p)
        EmergencyContact.objects.create(
            care_recipient=p, name="子女", relation="女儿", phone="13800000000"
        )
        if i != 5:  # P5 never consented
            Consent.objects.create(
                care_recipient=p,
                scope="monitoring",
                given_at=local(2026, 1, 1, 10),
                given_by="本人",
            )
    h1, h2, h3, h4, h5 = homes
    # P3 withdrew consent on 15 October.
    Consent.objects.get(care_recipient=people[2]).withdraw("本人", at=local(2026, 10, 15, 9))

    # Alerts. A1 is acknowledged, released back to open, acknowledged again (the first counts).
    a1 = alert(
        h1,
        "no_power",
        local(2026, 10, 20, 9, 0),
        [
            (5, Action.ACKNOWLEDGED, Status.ACKNOWLEDGED),
            (8, Action.CALL, None),
            (15, Action.RELEASED, Status.OPEN),
            (30, Action.ACKNOWLEDGED, Status.ACKNOWLEDGED),
            (32, Action.DISPATCHED, Status.DISPATCHED),
            (40, Action.ARRIVED, None),
            (60, Action.RESOLVED, Status.RESOLVED),
        ],
        outcome="false_alarm",
    )
    alert(
        h2,
        "inactivity",
        local(2026, 10, 21, 8, 0),
        [
            (10, Action.ACKNOWLEDGED, Status.ACKNOWLEDGED),
            (12, Action.CALL, None),
            (20, Action.RESOLVED, Status.RESOLVED),
        ],
        outcome="resident_fine",
    )
    alert(
        h4,
        "inactivity",
        local(2026, 10, 22, 7, 0),
        [
            (20, Action.ACKNOWLEDGED, Status.ACKNOWLEDGED),
            (25, Action.RESOLVED, Status.RESOLVED),
        ],
        outcome="false_alarm",
    )
    # Five minutes before November, local time (15:55 UTC on 31 October).
    alert(h1, "high_load", local(2026, 10, 31, 23, 55))
    # Five minutes into November, local time (still 31 October in UTC).
    alert(h2, "no_power", local(2026, 11, 1, 0, 5), [(1, Action.ACKNOWLEDGED, Status.ACKNOWLEDGED)])

    # Work orders.
    w1 = order(
        h3,
        t1,
        field,
        lead,
        local(2026, 10, 10, 9),
        arrived=local(2026, 10, 10, 9, 30),
        done=local(2026, 10, 10, 10),
        outcome="fault_repaired",
        score=5,
    )
    # Spans midnight into November: counts in November.
    order(
        h1,
        t1,
        field,
        lead,
        local(2026, 10, 31, 23, 0),
        arrived=local(2026, 10, 31, 23, 40),
        done=local(2026, 11, 1, 0, 20),
        outcome="fault_repaired",
        score=3,
    )
    # Ends half an hour into October local time (still 30 September in UTC): October.
    order(
        h2,
        t1,
        field,
        lead,
        local(2026, 9, 30, 23, 50),
        arrived=local(2026, 10, 1, 0, 10),
        done=local(2026, 10, 1, 0, 30),
        outcome="resident_fine",
        score=3,
    )
    # Ends ten minutes before October local time: September.
    order(
        h2,
        t1,
        field,
        lead,
        local(2026, 9, 30, 23, 0),
        arrived=local(2026, 9, 30, 23, 20),
        done=local(2026, 9, 30, 23, 50),
        outcome="resident_fine",
        score=1,
    )
    order(h1, t1, field, lead, local(2026, 10, 5, 9), cancelled=True)
    order(
        h1,
        t2,
        field2,
        lead,
        local(2026, 10, 20, 9, 32),
        arrived=local(2026, 10, 20, 9, 40),
        done=local(2026, 10, 20, 10),
        outcome="false_alarm",
        source="alert",
        alert=a1,
    )
    Call.objects.create(household=h1, by=lead, result="answered", at=local(2026, 10, 25, 9))

    # Activities.
    talk = Activity.objects.create(
        kind="safety_talk",
        title="用电安全讲座",
        team=t1,
        on=local(2026, 10, 3).date(),
        place="苏祠社区",
        transformer_area=area,
        beneficiaries=30,
    )
    talk.people.add(people[2])  # P3, named before she withdrew consent
    Activity.objects.create(
        kind="veterans",
        title="走访老兵",
        team=t2,
        on=local(2026, 10, 31).date(),
        place="湖滨社区",
        beneficiaries=4,
    )
    Activity.objects.create(
        kind="safety_talk",
        title="讲座",
        team=t1,
        on=local(2026, 11, 1).date(),
        place="苏祠社区",
        beneficiaries=50,
    )
    Activity.objects.create(
        kind="governance",
        title="议事会",
        team=t1,
        on=local(2026, 9, 30).date(),
        place="社区",
        beneficiaries=12,
    )

    # Inspections: one done late on 31 October local time, one just after midnight.
    plan = InspectionPlan.objects.create(
        name="廉租房小区月检",
        team=t1,
        transformer_area=area,
        checklist=["表箱", "线路"],
        first_on=local(2026, 1, 5).date(),
        every_days=30,
    )
    i1 = Inspection.objects.create(
        plan=plan,
        team=t1,
        due_on=local(2026, 10, 31).date(),
        started_at=local(2026, 10, 31, 22),
        done_at=local(2026, 10, 31, 23, 30),
    )
    Defect.objects.create(
        inspection=i1,
        description="表箱门损坏",
        household=h1,
        found_at=local(2026, 10, 31, 22, 30),
        fixed_at=local(2026, 10, 31, 23),
    )
    Defect.objects.create(
        inspection=i1, description="线路老化", household=h2, found_at=local(2026, 10, 31, 22, 40)
    )
    Inspection.objects.create(
        plan=plan,
        team=t1,
        due_on=local(2026, 11, 1).date(),
        started_at=local(2026, 11, 1, 0),
        done_at=local(2026, 11, 1, 0, 30),
    )

    class NS:
        pass

    ns = NS()
    ns.__dict__.update(
        dict(
            area=area,
            area2=area2,
            t1=t1,
            t2=t2,
            lead=lead,
            field=field,
            field2=field2,
            homes=homes,
            people=people,
            talk=talk,
            plan=plan,
            i1=i1,
            w1=w1,
            a1=a1,
        )
    )
    return ns
