"""The queue, its live endpoint, the case steps on the alert and away periods."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from lianxin.alerts import service as alerts
from lianxin.alerts.models import Alert, AwayPeriod, Status
from tests.alerts.helpers import cared_home, finding
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
