"""The household page."""

import pytest

from lianxin.dispatch.models import AuditEntry
from tests.web.helpers import as_user

pytestmark = pytest.mark.django_db


def test_viewing_a_residents_page_is_audited(client, case):
    home = case["home"]
    as_user(client, "operator").get(f"/households/{home.code}/")
    as_user(client, "field1").get(f"/dispatch/orders/{case['order'].pk}/")
    seen = list(AuditEntry.objects.values_list("user__username", "action", "household__code"))
    assert ("operator", "view", home.code) in seen and ("field1", "view", home.code) in seen


@pytest.mark.parametrize("alert", ["²", "9" * 40, "abc", "-3"])
def test_an_alert_parameter_that_cannot_be_read_is_a_400_in_the_users_language(client, case, alert):
    url = f"/households/{case['home'].code}/?alert={alert}"
    en = as_user(client, "operator").get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert en.status_code == 400 and "Cannot read the request" in en.content.decode()
    zh = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert zh.status_code == 400 and "无法读取请求" in zh.content.decode()


def test_a_household_code_with_a_nul_is_absent_not_an_error(client, case):
    as_user(client, "operator")
    assert client.get("/households/%00/").status_code == 404
    assert client.get(f"/households/{case['home'].code}%00/").status_code == 404
    assert client.get("/households/%00/load.json").status_code == 404


def test_looking_at_care_recipients_homes_and_consents_in_the_admin_is_audited(client, case):
    home = case["home"]
    person = home.care_recipients.first()
    consent = person.consents.first()
    as_user(client, "admin")
    for url in (
        "/admin/care/carerecipient/",
        f"/admin/care/carerecipient/{person.pk}/change/",
        "/admin/care/household/",
        f"/admin/care/household/{home.pk}/change/",
        f"/admin/care/consent/{consent.pk}/change/",
    ):
        assert client.get(url).status_code == 200
    seen = set(AuditEntry.objects.values_list("user__username", "what", "household"))
    assert ("admin", "carerecipient list (admin)", None) in seen
    assert ("admin", f"carerecipient {person.pk} (admin)", home.pk) in seen
    assert ("admin", "household list (admin)", None) in seen
    assert ("admin", f"household {home.pk} (admin)", home.pk) in seen
    assert ("admin", f"consent {consent.pk} (admin)", home.pk) in seen


def test_the_same_person_reopening_a_page_soon_is_one_audit_entry(client, case):
    home = case["home"]
    for _ in range(3):
        as_user(client, "operator").get(f"/households/{home.code}/")
    as_user(client, "lead").get(f"/households/{home.code}/")
    views = AuditEntry.objects.filter(action="view", household=home, what__startswith="household")
    assert sorted(views.values_list("user__username", flat=True)) == ["lead", "operator"]
