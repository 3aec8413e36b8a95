"""What the server log says (issue 12, defect 19): a refusal is one line, not a traceback; the
demo's log says which findings never reached the queue."""

import io
import logging

import pytest
from django.test import Client

from lianxin.alerts.service import apply_findings
from lianxin.care.models import Household
from lianxin.commands.demo import _queued
from tests.alerts.helpers import cared_home, finding, town
from tests.web.helpers import as_user

pytestmark = pytest.mark.django_db


def _console():
    # The handler the settings' LOGGING gives the root logger: what `lianxin serve` prints.
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    return handler


def test_a_403_is_one_line_in_the_server_log_without_a_traceback(case):
    handler = _console()
    out = io.StringIO()
    old = handler.setStream(out)
    try:
        client = as_user(Client(), "field1")
        assert client.get("/alerts/").status_code == 403
    finally:
        handler.setStream(old)
    log = out.getvalue()
    assert "Forbidden" in log and "/alerts/" in log
    assert "Traceback" not in log and len(log.strip().splitlines()) == 1


def test_an_error_keeps_its_traceback():
    # Only refusals lose theirs: a real failure logged with exc_info still shows where it was.
    handler = _console()
    out = io.StringIO()
    old = handler.setStream(out)
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("django.request").error("Internal Server Error: /x", exc_info=True)
    finally:
        handler.setStream(old)
    assert "Traceback" in out.getvalue() and "ValueError: boom" in out.getvalue()


def test_the_demo_log_tells_findings_that_reached_the_queue_from_those_that_did_not():
    town()
    cared = cared_home()
    nobody = Household.objects.filter(care_recipients__isnull=True).first()
    findings = [
        finding(cared, kind="high_load", severity="warning"),
        finding(nobody, kind="high_load", severity="warning"),
    ]
    apply_findings(findings)
    queued = _queued(findings)
    assert queued == {findings[0].finding_id: True, findings[1].finding_id: False}
