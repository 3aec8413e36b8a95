"""Inspections, defects that become repair orders, campaigns, activities and attachments."""

from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone, translation

from lianxin.alerts.models import TransitionError
from lianxin.dispatch import service as dispatch
from lianxin.ledgers import attachments
from lianxin.ledgers.models import Campaign, CampaignDay, Defect
from lianxin.ledgers.service import (
    campaign_figures,
    campaign_order,
    finish_inspection,
    name_beneficiary,
    schedule_inspections,
    spawn_repair,
)
from tests.ledgers.records import known_records

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def rec():
    return known_records()


def test_a_recurring_plan_is_due_every_n_days(rec):
    # First on Jan 5, every 30 days: Jan 5, Feb 4, Mar 6, ...
    assert rec.plan.due_dates(date(2026, 1, 1), date(2026, 3, 7)) == [
        date(2026, 1, 5),
        date(2026, 2, 4),
        date(2026, 3, 6),
    ]
    made = schedule_inspections(rec.plan, date(2026, 10, 1), date(2026, 12, 31))
    # Due Oct 2, Nov 1, Dec 1; Nov 1 already exists in the known records.
    assert sorted(i.due_on for i in made) == [date(2026, 10, 2), date(2026, 12, 1)]
    assert schedule_inspections(rec.plan, date(2026, 10, 1), date(2026, 12, 31)) == []


def test_the_checklist_must_be_complete(rec):
    insp = schedule_inspections(rec.plan, date(2026, 12, 1), date(2026, 12, 2))[0]
    with pytest.raises(TransitionError, match="线路"):
        finish_inspection(insp, [rec.field], [{"item": "表箱", "ok": True}])
    finish_inspection(
        insp, [rec.field], [{"item": "表箱", "ok": True}, {"item": "线路", "ok": False}]
    )
    insp.refresh_from_db()
    assert insp.done_at is not None and [r["ok"] for r in insp.results] == [True, False]


def test_a_defect_spawns_one_repair_order_that_is_worked_like_any_other(rec):
    defect = Defect.objects.get(description="线路老化")
    order = spawn_repair(rec.lead, defect, rec.field)
    assert (order.source, order.household, order.team) == ("inspection", defect.household, rec.t1)
    with pytest.raises(TransitionError):
        spawn_repair(rec.lead, defect, rec.field)
    dispatch.arrived(rec.field, order)
    dispatch.done(rec.field, order, "fault_repaired", "换线", satisfaction=5)
    defect.refresh_from_db()
    assert defect.repair_order.status == "done"


def test_a_campaign_counts_its_days_members_and_households(rec):
    c = Campaign.objects.create(
        name="抗洪抢修", team=rec.t1, starts_on=date(2026, 7, 21), ends_on=date(2026, 7, 28),
        other_members=60,
    )  # fmt: skip
    c.members.add(rec.lead, rec.field)
    for i, n in enumerate([1200, 5400, 10800, 9000, 7000, 4200, 2100, 500]):
        CampaignDay.objects.create(campaign=c, day=date(2026, 7, 21 + i), households_restored=n)
    campaign_order(rec.lead, c, rec.homes[0], rec.field, "恢复供电")
    f = campaign_figures(c)
    assert (f["days"], f["members"], f["households_restored"]) == (8, 62, 40200)
    assert f["work_orders"] == 1 and f["daily"][2][1] == 10800


def test_only_people_with_consent_are_named(rec):
    with pytest.raises(TransitionError):
        name_beneficiary(rec.talk, rec.people[4])  # never consented
    name_beneficiary(rec.talk, rec.people[0])
    assert list(rec.talk.people.order_by("name").values_list("name", flat=True)) == [
        "老人1",
        "老人3",
    ]


def test_attachments_are_type_and_size_checked_and_stored_under_home(rec):
    translation.activate("en")  # the messages are matched in English
    att = attachments.attach(
        rec.field, SimpleUploadedFile("门.png", PNG, "image/png"), work_order=rec.w1
    )
    stored = Path(settings.LIANXIN_HOME) / att.path
    assert stored.read_bytes() == PNG and att.content_type == "image/png"
    assert ".." not in att.path and att.path.startswith("attachments/")
    with pytest.raises(TransitionError, match="evil.jpg"):
        attachments.attach(
            rec.field, SimpleUploadedFile("evil.jpg", b"MZ\x90\x00" * 10), work_order=rec.w1
        )
    with pytest.raises(TransitionError, match="empty"):
        attachments.attach(rec.field, SimpleUploadedFile("a.png", b""), work_order=rec.w1)
    big = SimpleUploadedFile("big.png", PNG + b"\x00" * attachments.MAX_BYTES)
    with pytest.raises(TransitionError, match="big.png"):
        attachments.attach(rec.field, big, work_order=rec.w1)
    assert rec.w1.attachments.count() == 1


def test_a_defect_of_the_area_itself_spawns_a_repair_at_the_area(rec, client):
    # A transformer-area defect has no household: the order names the area as its place.
    defect = Defect.objects.create(inspection=rec.i1, description="台区电缆外皮破损")
    order = spawn_repair(rec.lead, defect, rec.field)
    where = (order.household, order.transformer_area, order.place)
    assert where == (None, rec.area, "三苏路1号台区")
    assert order.area == rec.area
    client.force_login(rec.field)
    field = client.get("/dispatch/field/").content.decode()
    assert "三苏路1号台区" in field
    page = client.get(f"/dispatch/orders/{order.pk}/").content.decode()
    assert 'id="order-place"' in page and "台区电缆外皮破损" in page
    # The desk may reassign it within the order's team only (no home whose carers to offer).
    client.force_login(rec.lead)
    reassign = client.get(f"/dispatch/orders/{order.pk}/").content.decode()
    reassign = reassign[reassign.index('id="reassign-form"') :]
    assert f'value="{rec.lead.pk}"' in reassign and f'value="{rec.field2.pk}"' not in reassign
    dispatch.arrived(rec.field, order)
    dispatch.done(rec.field, order, "fault_repaired", "更换电缆", satisfaction=None)
    client.force_login(rec.lead)
    assert 'id="order-place"' in client.get(f"/dispatch/orders/{order.pk}/").content.decode()
    # The area filter of the figures counts it; the service-record ledger lists it at the area.
    from lianxin.ledgers.figures import Period, Scope

    order.refresh_from_db()
    day = timezone.localtime(order.done_at).date()
    scope = Scope(Period.month(day.year, day.month), area=rec.area)
    assert scope.orders().filter(pk=order.pk).exists()
    assert "三苏路1号台区" in client.get(
        f"/ledgers/records/?month={day:%Y-%m}&area=TA1"
    ).content.decode()
