import pytest
from django.contrib.auth.models import Group

from lianxin.care.roles import ROLE_PERMISSIONS, Role

pytestmark = pytest.mark.django_db


def test_every_role_is_a_group_with_its_permissions():
    for role in Role:
        group = Group.objects.get(name=role)
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert set(ROLE_PERMISSIONS[role]) <= granted
    field = {p.codename for p in Group.objects.get(name=Role.FIELD_MEMBER).permissions.all()}
    assert "view_carerecipient" in field and "change_carerecipient" not in field
    assert Group.objects.get(name=Role.ADMIN).permissions.count() > 30
