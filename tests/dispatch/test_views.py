"""Work orders, the field view, the audit log and the export."""

import pytest
from django.contrib.auth import get_user_model

from lianxin.dispatch import service as dispatch
from lianxin.dispatch.models import AuditEntry, WorkOrder
from tests.alerts.helpers import cared_home
from tests.web.helpers import as_user

pytestmark = pytest.mark.django_db

EXPORT = "/dispatch/export/care-recipients.csv"


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


def test_a_bad_done_form_gives_a_message_not_an_error(client, case):
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


@pytest.mark.parametrize("satisfaction", ["²", "0", "6", "9" * 40, "\x00"])
def test_done_with_an_unreadable_satisfaction_is_refused_with_a_message(client, case, satisfaction):
    order = case["order"]
    as_user(client, "field1").post(f"/dispatch/orders/{order.pk}/arrived")
    response = client.post(
        f"/dispatch/orders/{order.pk}/done",
        {"outcome": "resident_fine", "satisfaction": satisfaction},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert "Satisfaction is a number from 1 to 5." in response.content.decode()
    order.refresh_from_db()
    assert order.status == "arrived"


@pytest.mark.parametrize(
    "form,message",
    [
        ({"household": "\x00", "request": "x"}, "Null characters"),
        ({"request": "kitchen\x00 light"}, "Null characters"),
        ({"household": "H" * 101, "request": "x"}, "at most 100 characters"),
        ({"household": "nobody", "request": "x"}, "No resident or household matches"),
        ({"request": "x" * 2001}, "at most 2000 characters"),
        ({"request": " "}, "Say what the resident asked for."),
        ({"assignee": "abc", "request": "x"}, "Choose a team member."),
        ({"assignee": "admin", "request": "x"}, "Choose a team member."),
    ],
)
def test_a_hotline_request_that_cannot_be_read_is_refused_with_a_message(
    client, case, form, message
):
    User = get_user_model()
    data = {"household": case["home"].code, "assignee": User.objects.get(username="field1").pk}
    data |= form
    if data["assignee"] == "admin":  # not offered: admins are not sent to homes
        data["assignee"] = User.objects.get(username="admin").pk
    as_user(client, "operator")
    before = WorkOrder.objects.count()
    response = client.post("/dispatch/orders/hotline", data, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and message in response.content.decode()
    assert WorkOrder.objects.count() == before


def test_the_field_view_is_audited(client, case):
    as_user(client, "field1").get("/dispatch/field/")
    entry = AuditEntry.objects.get(user__username="field1", action="view")
    assert "field view" in entry.what
