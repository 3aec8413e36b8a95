import pytest
from django.contrib.auth.models import Group

from lianxin.alerts.models import Status
from lianxin.care.roles import ROLE_PERMISSIONS, Role
from tests.web.helpers import as_user

pytestmark = pytest.mark.django_db


def test_every_role_is_a_group_with_its_permissions():
    for role in Role:
        group = Group.objects.get(name=role)
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert set(ROLE_PERMISSIONS[role]) <= granted
    field = {p.codename for p in Group.objects.get(name=Role.FIELD_MEMBER).permissions.all()}
    assert "view_carerecipient" in field and "change_carerecipient" not in field
    assert Group.objects.get(name=Role.ADMIN).permissions.count() > 30


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


def test_case_actions_refuse_a_field_member(client, case):
    as_user(client, "field1")
    pk = case["alert"].pk
    for action in ("acknowledge", "call", "dispatch", "resolve", "note"):
        assert client.post(f"/alerts/{pk}/{action}", {"outcome": "false_alarm"}).status_code == 403
    case["alert"].refresh_from_db()
    assert case["alert"].status == Status.DISPATCHED
