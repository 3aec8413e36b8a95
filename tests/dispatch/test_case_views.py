"""The case page of an alert and its call and dispatch steps."""

import pytest
from django.contrib.auth import get_user_model

from lianxin.alerts import service as alerts
from lianxin.alerts.models import Status
from lianxin.dispatch.models import AuditEntry, Call, WorkOrder
from tests.alerts.helpers import cared_home, finding, outage
from tests.web.helpers import as_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_alert(case):
    return alerts.apply_findings([finding(cared_home("湖滨服务队"), "no_power")])[0]


def _post(client, url, data):
    return client.post(url, data, follow=True, HTTP_ACCEPT_LANGUAGE="en")


@pytest.mark.parametrize("assignee", ["abc", "²", "9" * 40, "", "-1"])
def test_dispatch_to_an_unreadable_assignee_is_refused_with_a_message(client, open_alert, assignee):
    as_user(client, "operator")
    response = _post(client, f"/alerts/{open_alert.pk}/dispatch", {"assignee": assignee})
    assert response.status_code == 200 and "Choose a team member." in response.content.decode()
    assert not WorkOrder.objects.filter(alert=open_alert).exists()


def test_the_case_page_offers_the_homes_team_and_dispatch_takes_only_someone_offered(
    client, open_alert
):
    User = get_user_model()
    page = as_user(client, "operator").get(f"/alerts/{open_alert.pk}/").content.decode()
    # The home is cared for by the lakeside team: its members are offered, the others are not.
    field1, field3 = User.objects.get(username="field1"), User.objects.get(username="field3")
    assert f'value="{field3.pk}"' in page and f'value="{field1.pk}"' not in page
    for outsider in (field1, User.objects.get(username="admin")):
        response = _post(client, f"/alerts/{open_alert.pk}/dispatch", {"assignee": outsider.pk})
        assert "Choose a team member." in response.content.decode()
    assert not WorkOrder.objects.filter(alert=open_alert).exists()
    _post(client, f"/alerts/{open_alert.pk}/dispatch", {"assignee": field3.pk, "request": "go"})
    assert WorkOrder.objects.get(alert=open_alert).assignee == field3


def test_a_welfare_call_is_only_for_a_home_inside_the_outage(client, case):
    home = case["home"]
    area = home.transformer_area
    [grid] = alerts.apply_findings([outage(area, [home])])
    outside = cared_home("湖滨服务队")
    assert outside.code not in grid.households
    as_user(client, "operator")
    url = f"/alerts/{grid.pk}/call"
    response = _post(client, url, {"household": outside.code, "result": "resident_fine"})
    assert "That home is not inside this grid outage." in response.content.decode()
    for code in ("\x00", "H" * 500):
        assert _post(client, url, {"household": code, "result": "resident_fine"}).status_code == 200
    assert not Call.objects.exists()
    _post(client, url, {"household": home.code, "result": "resident_fine", "called": "本人"})
    assert Call.objects.get().household == home


def test_a_call_with_an_unreadable_result_or_an_overlong_note_is_refused(client, open_alert):
    as_user(client, "operator")
    url = f"/alerts/{open_alert.pk}/call"
    response = _post(client, url, {"result": "²"})
    assert "Choose how the call went." in response.content.decode()
    response = _post(client, url, {"result": "resident_fine", "note": "x" * 2001})
    assert "at most 2000 characters" in response.content.decode()
    response = _post(client, url, {"result": "resident_fine", "called": "x" * 101})
    assert "at most 100 characters" in response.content.decode()
    assert not Call.objects.exists()
    open_alert.refresh_from_db()
    assert open_alert.status == Status.OPEN


def test_the_case_page_after_each_step_is_one_audit_entry(client, open_alert):
    as_user(client, "operator")
    client.get(f"/alerts/{open_alert.pk}/")
    client.post(f"/alerts/{open_alert.pk}/acknowledge", follow=True)
    client.post(f"/alerts/{open_alert.pk}/note", {"note": "rang"}, follow=True)
    views = AuditEntry.objects.filter(action="view", what__startswith=f"alert {open_alert.pk}:")
    assert views.count() == 1
