"""The queue, its live endpoint, the case steps on the alert and away periods."""

from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from lianxin.alerts import service as alerts
from lianxin.alerts.models import Alert, AwayPeriod, Status
from lianxin.dispatch.models import AuditEntry
from tests.alerts.helpers import cared_home, enroll, finding, outage
from tests.web.helpers import as_user

pytestmark = pytest.mark.django_db


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


def test_a_bad_resolve_form_gives_a_message_not_an_error(client, case):
    as_user(client, "operator")
    pk = case["alert"].pk
    response = client.post(f"/alerts/{pk}/resolve", {"outcome": "nonsense"}, follow=True)
    assert response.status_code == 200
    assert Alert.objects.get(pk=pk).status == Status.DISPATCHED


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


def test_the_queue_footer_counts_what_it_leaves_out(client, case):
    """Alerts covered by a grid outage and alerts silenced while the resident is away are not in
    the active queue; the footer says how many (it used to show blanks)."""
    other = cared_home("湖滨服务队")
    [idle] = alerts.apply_findings([finding(other, "inactivity", "warning")])
    op = get_user_model().objects.get(username="operator")
    alerts.add_away_period(
        other, op, timezone.now() - timedelta(hours=1), timezone.now() + timedelta(days=2), "trip"
    )
    area = other.transformer_area
    homes = list(area.households.exclude(pk=other.pk))
    for h in homes:
        if not h.care_recipients.exists():
            enroll(h)
    alerts.apply_findings([finding(h, started=timezone.now()) for h in homes])
    alerts.apply_findings([outage(area, homes)])
    inhibited = Alert.objects.filter(status=Status.INHIBITED).count()
    assert inhibited >= 1 and Alert.objects.get(pk=idle.pk).status == Status.SILENCED

    en = as_user(client, "operator").get("/alerts/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert (
        f"Not in the queue: {inhibited} covered by a grid outage, 1 silenced while the "
        "resident is away." in en
    )
    zh = client.get("/alerts/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    footer = f"未列入队列：{inhibited} 条被电网停电覆盖，1 条因居民外出已静默。"
    assert footer in zh.replace("： ", "：")
    # The live endpoint carries the footer too, so a page left open keeps it current.
    data = client.get("/alerts/queue.json", HTTP_ACCEPT_LANGUAGE="en").json()
    assert data["footer"].startswith(f"Not in the queue: {inhibited} covered by a grid outage")


@pytest.mark.parametrize(
    "query",
    ["team=²", "team=" + "9" * 40, "team=-1", "area=%00", "kind=nonsense", "state=gone"],
)
@pytest.mark.parametrize("url", ["/alerts/", "/alerts/queue.json"])
def test_a_queue_filter_that_cannot_be_read_is_a_400_with_a_message(client, case, url, query):
    as_user(client, "operator")
    response = client.get(f"{url}?{query}", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    message = response.json()["error"] if url.endswith(".json") else response.content.decode()
    field = {"team": "Team", "area": "Transformer area", "kind": "Kind", "state": "State"}
    assert field[query.split("=")[0]] in message
    zh = client.get(f"{url}?{query}", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert zh.status_code == 400 and "Enter" not in zh.content.decode()


@pytest.mark.parametrize(
    "form,message",
    [
        ({"ends_at": "2026-02-30", "comment": "x"}, "Cannot read the date back 2026-02-30"),
        (
            {"starts_at": "2026-03-01T25:99", "ends_at": "2026-03-02", "comment": "x"},
            "Cannot read the start 2026-03-01T25:99",
        ),
        ({"ends_at": "2099-03-02", "comment": "with\x00her son"}, "Null characters"),
        ({"ends_at": "2099-03-02", "comment": "x" * 201}, "at most 200 characters"),
        ({"ends_at": "2099-03-02"}, "Say why the resident is away."),
        ({"comment": "x"}, "Give the date the resident is back."),
    ],
)
def test_an_away_period_that_cannot_be_read_is_refused_with_a_message(client, case, form, message):
    code = case["home"].code
    as_user(client, "operator")
    response = client.post(f"/alerts/away/{code}", form, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not AwayPeriod.objects.exists()


def test_a_note_is_capped_and_a_missing_outcome_is_named(client, case):
    pk = case["alert"].pk
    as_user(client, "operator")
    long = client.post(
        f"/alerts/{pk}/note", {"note": "x" * 2001}, follow=True, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "at most 2000 characters" in long.content.decode()
    assert not case["alert"].events.filter(action="note").exists()
    client.post(f"/alerts/{pk}/note", {"note": "x" * 2000})
    assert case["alert"].events.filter(action="note").count() == 1
    response = client.post(f"/alerts/{pk}/resolve", {}, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "Choose an outcome." in response.content.decode()


def test_looking_at_the_queue_is_audited_once_not_on_every_poll(client, case):
    as_user(client, "operator")
    client.get("/alerts/")
    for _ in range(3):
        client.get("/alerts/queue.json")
    seen = AuditEntry.objects.filter(user__username="operator", action="view", what="alert queue")
    assert seen.count() == 1
