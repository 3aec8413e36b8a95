"""Roles on every page and API, the audit log, the live queue endpoint and the chart data."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from lianxin.alerts import service as alerts
from lianxin.alerts.models import Alert, AwayPeriod, Status
from lianxin.dispatch import service as dispatch
from lianxin.dispatch.models import AuditEntry
from tests.alerts.helpers import cared_home, finding, town
from tests.web.readings import write_real_curve

pytestmark = pytest.mark.django_db


@pytest.fixture
def case():
    town()
    home = cared_home()
    [alert] = alerts.apply_findings([finding(home, started=datetime.now(UTC) - timedelta(hours=1))])
    op = get_user_model().objects.get(username="operator")
    order = dispatch.dispatch(op, alert, get_user_model().objects.get(username="field1"), "go")
    return {"home": home, "alert": alert, "order": order}


def as_user(client, username):
    client.force_login(get_user_model().objects.get(username=username))
    return client


OPERATOR_PAGES = ["/alerts/", "/alerts/queue.json", "/alerts/{alert}/", "/dispatch/orders/"]
ADMIN_PAGES = ["/dispatch/audit/"]
EXPORT = "/dispatch/export/care-recipients.csv"


@pytest.mark.parametrize("url", OPERATOR_PAGES + ADMIN_PAGES + [EXPORT])
def test_a_field_member_gets_403_on_duty_room_pages(client, case, url):
    as_user(client, "field1")
    assert client.get(url.format(alert=case["alert"].pk)).status_code == 403


@pytest.mark.parametrize("url", OPERATOR_PAGES + ["/dispatch/field/", "/households/H00001/"])
def test_anonymous_visitors_are_sent_to_sign_in(client, case, url):
    response = client.get(url.format(alert=case["alert"].pk))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_each_role_lands_on_its_own_start_page(client, case):
    assert as_user(client, "operator").get("/")["Location"] == "/alerts/"
    assert as_user(client, "field1").get("/")["Location"] == "/dispatch/field/"


def test_case_actions_refuse_a_field_member(client, case):
    as_user(client, "field1")
    pk = case["alert"].pk
    for action in ("acknowledge", "call", "dispatch", "resolve", "note"):
        assert client.post(f"/alerts/{pk}/{action}", {"outcome": "false_alarm"}).status_code == 403
    case["alert"].refresh_from_db()
    assert case["alert"].status == Status.DISPATCHED


def test_only_leads_and_admins_export_and_every_export_is_audited(client, case):
    assert as_user(client, "operator").get(EXPORT).status_code == 403
    response = as_user(client, "lead").get(EXPORT)
    assert response.status_code == 200
    body = response.content.decode("utf-8-sig")
    assert "杜德明" in body or body.count("\n") > 2
    entry = AuditEntry.objects.get(action="export")
    assert entry.user.username == "lead" and "rows" in entry.what
    assert as_user(client, "lead").get("/dispatch/audit/").status_code == 403
    audit = as_user(client, "admin").get("/dispatch/audit/", HTTP_ACCEPT_LANGUAGE="en")
    assert audit.status_code == 200 and "exported personal data" in audit.content.decode()


def test_viewing_a_residents_page_is_audited(client, case):
    home = case["home"]
    as_user(client, "operator").get(f"/households/{home.code}/")
    as_user(client, "field1").get(f"/dispatch/orders/{case['order'].pk}/")
    seen = list(AuditEntry.objects.values_list("user__username", "action", "household__code"))
    assert ("operator", "view", home.code) in seen and ("field1", "view", home.code) in seen


def test_a_field_member_cannot_open_another_teams_home_or_order(client, case):
    other = cared_home("湖滨服务队")
    op = get_user_model().objects.get(username="operator")
    theirs = dispatch.hotline_request(
        op, other, get_user_model().objects.get(username="field3"), "x"
    )
    as_user(client, "field1")
    assert client.get(f"/households/{other.code}/").status_code == 404
    assert client.get(f"/dispatch/orders/{theirs.pk}/").status_code == 404
    assert client.post(f"/dispatch/orders/{theirs.pk}/arrived").status_code == 404
    assert client.get(f"/households/{case['home'].code}/").status_code == 200
    page = client.get("/dispatch/field/").content.decode()
    assert f"#{case['order'].pk}" in page and f"#{theirs.pk}" not in page


def test_the_live_queue_endpoint_shows_new_critical_alerts_worst_first(client, case):
    as_user(client, "operator")
    home2 = cared_home("湖滨服务队")
    [new] = alerts.apply_findings([finding(home2, "high_load", "warning")])
    [crit] = alerts.apply_findings([finding(home2, "no_power")])
    data = client.get("/alerts/queue.json", HTTP_ACCEPT_LANGUAGE="en").json()
    assert data["critical_new"] == [crit.pk]  # the dispatched one is being worked
    html = data["html"]
    assert html.index(f'data-id="{crit.pk}"') < html.index(f'data-id="{new.pk}"')
    assert "no power at home" in html
    only = client.get("/alerts/queue.json?kind=high_load").json()
    assert only["count"] == 1 and f'data-id="{new.pk}"' in only["html"]
    team = client.get(f"/alerts/queue.json?team={case['order'].team_id}").json()
    assert f'data-id="{crit.pk}"' not in team["html"]


def test_a_bad_form_gives_a_message_not_an_error(client, case):
    as_user(client, "operator")
    pk = case["alert"].pk
    response = client.post(f"/alerts/{pk}/resolve", {"outcome": "nonsense"}, follow=True)
    assert response.status_code == 200
    assert Alert.objects.get(pk=pk).status == Status.DISPATCHED
    as_user(client, "field1")
    order = case["order"]
    client.post(f"/dispatch/orders/{order.pk}/arrived")
    response = client.post(
        f"/dispatch/orders/{order.pk}/done",
        {"outcome": "resident_fine", "satisfaction": "lots"},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert "Satisfaction is a number from 1 to 5." in response.content.decode()


def test_setting_an_away_period_from_the_household_page(client, case):
    home = case["home"]
    [idle] = alerts.apply_findings([finding(home, "inactivity", "warning")])
    as_user(client, "operator")
    back = (datetime.now() + timedelta(days=4)).strftime("%Y-%m-%d")
    client.post(f"/alerts/away/{home.code}", {"ends_at": back, "comment": "with her son"})
    idle.refresh_from_db()
    assert idle.status == Status.SILENCED
    away = AwayPeriod.objects.get()
    # "Back on" a date: silenced through the end of that local day.
    assert timezone.localtime(away.ends_at).strftime("%Y-%m-%d %H:%M") == f"{back} 23:59"
    response = client.post(
        f"/alerts/away/{home.code}",
        {"starts_at": "next tuesday", "ends_at": back, "comment": "x"},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert "Cannot read the start next tuesday" in response.content.decode()
    assert AwayPeriod.objects.count() == 1
    page = client.get(f"/households/{home.code}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "with her son" in page and 'id="away-now"' in page
    assert (
        as_user(client, "field1")
        .post(f"/alerts/away/{home.code}", {"ends_at": back, "comment": "x"})
        .status_code
        == 403
    )


def test_chart_data_has_the_real_curve_the_usual_band_and_the_alert_start(client, case):
    home, alert = case["home"], case["alert"]
    now = datetime.now(UTC)
    write_real_curve(home.meters.get(kind="electricity"), days=40, now=now)
    as_user(client, "operator")
    data = client.get(f"/households/{home.code}/load.json?range=48h&alert={alert.pk}").json()
    assert 90 <= len(data["load"]) <= 97  # half-hourly for 48 hours
    assert all(v >= 0 for _, v in data["load"])
    assert len(data["band"]) >= 90 and all(lo <= hi for _, lo, hi in data["band"])
    assert data["marks"][0]["at"] >= data["start"]
    assert datetime.fromisoformat(data["latest_reading"]) > now - timedelta(hours=1)
    week = client.get(f"/households/{home.code}/load.json?range=30d").json()
    assert len(week["load"]) > 1400
    assert client.get(f"/households/{home.code}/load.json?range=1y").status_code == 404


def test_chart_data_for_a_home_without_readings_is_empty_not_an_error(client, case):
    as_user(client, "operator")
    data = client.get(f"/households/{case['home'].code}/load.json").json()
    assert (data["load"], data["latest_reading"]) == ([], None)
