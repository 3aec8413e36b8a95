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
