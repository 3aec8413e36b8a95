"""Shared by the view tests of every app: a demo town with one dispatched alert, and signing in
as one of its users. Each app's conftest imports the `case` fixture."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from lianxin.alerts import service as alerts
from lianxin.dispatch import service as dispatch
from tests.alerts.helpers import cared_home, finding, town


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
