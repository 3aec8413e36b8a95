"""The team's phone forms: an inspection with its checklist, defects and repairs; a campaign
day; an activity. Recorded by a field member of the team, refused to another team's."""

from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from lianxin.dispatch.models import WorkOrder
from lianxin.ledgers.models import Activity, Attachment, Campaign, CampaignDay, Defect
from lianxin.ledgers.service import schedule_inspections
from tests.ledgers.records import known_records

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def rec():
    return known_records()


@pytest.fixture
def due(rec):
    today = timezone.localdate()
    rec.plan.first_on = today
    rec.plan.save()
    return schedule_inspections(rec.plan, today, today + timedelta(days=1))[0]


def test_the_list_schedules_the_plans_inspections_of_the_week(client, rec):
    today = timezone.localdate()
    rec.plan.first_on = today + timedelta(days=3)
    rec.plan.save()
    client.force_login(rec.field)
    page = client.get("/ledgers/field/").content.decode()
    [made] = rec.plan.inspections.filter(due_on=today + timedelta(days=3))
    assert f"/ledgers/field/inspections/{made.pk}/" in page
    client.get("/ledgers/field/")  # once only
    assert rec.plan.inspections.filter(due_on__gte=today).count() == 1


def test_a_field_member_records_an_inspection_with_defects_and_a_repair(client, rec, due):
    client.force_login(rec.field)
    home = client.get("/ledgers/field/").content.decode()
    assert f"/ledgers/field/inspections/{due.pk}/" in home
    url = f"/ledgers/field/inspections/{due.pk}/"
    body = {
        "ok_0": "yes",
        "ok_1": "no",
        "note_1": "线路老化",
        "defect_0": "台区电缆破损",  # the area itself, a repair sent
        "repair_0": rec.field.pk,
        "defect_1": "表箱门坏",
        "home_1": "H2",
        "members": [rec.field.pk, rec.lead.pk],
        "note": "正常巡视",
        "photo": SimpleUploadedFile("现场.png", PNG),
    }
    r = client.post(url, body)
    assert r.status_code == 302, r.content.decode()[-2000:]
    due.refresh_from_db()
    assert due.done_at is not None
    assert [(x["item"], x["ok"], x["note"]) for x in due.results] == [
        ("表箱", True, ""),
        ("线路", False, "线路老化"),
    ]
    assert set(due.members.all()) == {rec.field, rec.lead}
    cable, box = Defect.objects.filter(inspection=due).order_by("pk")
    assert cable.household is None and box.household.code == "H2" and box.repair_order is None
    order = cable.repair_order
    assert (order.source, order.household, order.place, order.assignee) == (
        "inspection",
        None,
        "三苏路1号台区",
        rec.field,
    )
    assert Attachment.objects.get(inspection=due).name == "现场.png"
    # Recorded once: the page now shows what was recorded, with the repair order, and offers
    # a repair for the defect that has none.
    done = client.get(url).content.decode()
    assert (
        f"/dispatch/orders/{order.pk}/" in done
        and f"/ledgers/field/defects/{box.pk}/repair" in done
    )
    r = client.post(f"/ledgers/field/defects/{box.pk}/repair", {"assignee": rec.lead.pk})
    assert r.status_code == 302
    box.refresh_from_db()
    assert (box.repair_order.household, box.repair_order.assignee) == (box.household, rec.lead)
    # Once only; someone of another team cannot be sent.
    r = client.post(
        f"/ledgers/field/defects/{box.pk}/repair", {"assignee": rec.lead.pk}, follow=True
    )
    assert WorkOrder.objects.filter(source="inspection").count() == 2
    other = Defect.objects.create(inspection=due, description="接地线松动")
    r = client.post(f"/ledgers/field/defects/{other.pk}/repair", {"assignee": rec.field2.pk})
    other.refresh_from_db()
    assert other.repair_order is None


def test_an_unanswered_item_or_an_unknown_home_is_said_and_nothing_is_written(client, rec, due):
    client.force_login(rec.field)
    url = f"/ledgers/field/inspections/{due.pk}/"
    r = client.post(url, {"ok_0": "yes", "defect_0": "x", "home_0": "H999"})
    page = r.content.decode()
    assert r.status_code == 400
    assert "H999" in page and page.count('class="error small"') == 2  # item 线路, home H999
    due.refresh_from_db()
    assert due.done_at is None and not Defect.objects.filter(inspection=due).exists()
    assert not WorkOrder.objects.filter(source="inspection").exists()


def test_another_teams_member_gets_403_on_every_form(client, rec, due):
    c = Campaign.objects.create(
        name="抗洪抢修", team=rec.t1, starts_on=date(2026, 7, 20), ends_on=date(2026, 7, 27)
    )
    client.force_login(rec.field2)
    assert client.get(f"/ledgers/field/inspections/{due.pk}/").status_code == 403
    assert client.post(f"/ledgers/field/campaigns/{c.pk}/day", {}).status_code == 403
    defect = Defect.objects.create(inspection=due, description="x")
    r = client.post(f"/ledgers/field/defects/{defect.pk}/repair", {"assignee": rec.field2.pk})
    assert r.status_code == 403 and WorkOrder.objects.filter(source="inspection").count() == 0
    # An activity for a team that is not theirs is not offered, and refused.
    r = client.post(
        "/ledgers/field/activities/new",
        {
            "kind": "safety_talk",
            "title": "t",
            "team": rec.t1.pk,
            "on": "2026-10-05",
            "place": "p",
            "beneficiaries": 3,
        },
    )
    assert r.status_code == 400 and not Activity.objects.filter(title="t").exists()


def test_a_campaign_day_is_recorded_corrected_and_kept_inside_the_campaign(client, rec):
    c = Campaign.objects.create(
        name="抗洪抢修", team=rec.t1, starts_on=date(2026, 7, 20), ends_on=date(2026, 7, 27)
    )
    client.force_login(rec.field)
    url = f"/ledgers/field/campaigns/{c.pk}/day"
    body = {"day": "2026-07-21", "households_restored": 1200, "members_out": 62}
    assert client.post(url, body).status_code == 302
    body["households_restored"] = 1300  # the same day again corrects it
    assert client.post(url, body).status_code == 302
    [day] = CampaignDay.objects.filter(campaign=c)
    assert (day.day, day.households_restored, day.members_out) == (date(2026, 7, 21), 1300, 62)
    r = client.post(url, {**body, "day": "2026-07-28"})
    assert r.status_code == 400 and "2026-07-28" in r.content.decode()
    r = client.post(url, {**body, "households_restored": -1})
    assert r.status_code == 400 and CampaignDay.objects.count() == 1


def test_an_activity_is_recorded_with_its_members(client, rec):
    client.force_login(rec.field)
    r = client.post(
        "/ledgers/field/activities/new",
        {
            "kind": "veterans",
            "title": "走访老兵",
            "team": rec.t1.pk,
            "on": "2026-10-05",
            "place": "湖滨社区",
            "area": "TA1",
            "beneficiaries": 6,
            "members": [rec.field.pk],
        },
    )
    assert r.status_code == 302
    act = Activity.objects.get(title="走访老兵", on=date(2026, 10, 5))
    assert (act.team, act.transformer_area, act.beneficiaries) == (rec.t1, rec.area, 6)
    assert list(act.members.all()) == [rec.field]
