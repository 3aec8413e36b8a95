"""The demo's notification set-up (what `lianxin demo` runs before serving the duty room): its
channels deliver to the inbox it runs itself, step 1 reaches the operator on the roster, and
each attempt is on the alert's timeline."""

import json
import urllib.request
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from lianxin.alerts.models import Action
from lianxin.alerts.service import apply_findings
from lianxin.care.models import Membership
from lianxin.notify import demo, worker
from lianxin.notify.models import Attempt, Channel, RosterShift
from tests.alerts.helpers import cared_home, finding, town

pytestmark = pytest.mark.django_db


def test_the_demo_inbox_receives_step_one_for_the_rostered_operator(tmp_path, client):
    town()
    inbox = demo.start(tmp_path, port=0)
    try:
        now = timezone.now()
        users = {u.username: u for u in get_user_model().objects.all()}
        on_duty = RosterShift.objects.get(starts_at__lte=now, ends_at__gt=now)
        assert on_duty.user == users["operator"]
        assert any("operator" in line for line in demo.on_duty_now())
        home = cared_home()
        [alert] = apply_findings([finding(home, started=now - timedelta(hours=1))], now=now)
        report = worker.run_once(now=now)
        assert report.sent >= 2 and report.failed == 0

        # Real deliveries: the attempts succeeded, and the inbox kept what arrived.
        assert set(Attempt.objects.values_list("ok", flat=True)) == {True}
        with urllib.request.urlopen(inbox.url + "/messages.json", timeout=10) as r:
            got = json.loads(r.read())
        phone = Membership.objects.get(user=users["operator"]).phone
        other = Membership.objects.get(user=users["operator2"]).phone
        texts = [m for m in got if m["via"] == "sms"]
        assert [m["to"] for m in texts] == [phone] and other not in {m["to"] for m in got}
        [hook] = [m for m in got if m["via"] == "webhook"]
        assert hook["link"].endswith(f"/alerts/{alert.pk}/") and hook["language"] == "zh-hans"
        lines = (tmp_path / "demo-inbox.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(got)

        # The escalation and each delivery are on the timeline, and the case page shows them.
        actions = list(alert.events.values_list("action", flat=True))
        assert Action.ESCALATION in actions and actions.count(Action.NOTIFIED) == len(got)
        client.force_login(users["operator"])
        page = client.get(f"/alerts/{alert.pk}/").content.decode()
        assert "值班员短信（演示收件箱）" in page and phone in page

        # The inbox checks the signature like a real receiver: a forged request is refused
        # and the worker would record it as a failure.
        bad = urllib.request.Request(
            inbox.url + "/webhook",
            data=b'{"text": "x"}',
            headers={
                "Idempotency-Key": "k",
                "X-Lianxin-Timestamp": "1",
                "X-Lianxin-Signature": "x",
            },
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=10)
        assert refused.value.code == 401
    finally:
        inbox.close()

    # A second start (the demo restarted, on another port) re-points the same channels.
    again = demo.start(tmp_path, port=0)
    try:
        assert Channel.objects.filter(options__demo_inbox=True).count() == 4
        assert {c.url.rsplit("/", 1)[0] for c in Channel.objects.all()} == {again.url}
        assert len(again.messages) == len(got)
        assert RosterShift.objects.filter(starts_at__lte=now, ends_at__gt=now).count() == 1
    finally:
        again.close()
