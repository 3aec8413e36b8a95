"""The outbox and its worker: written with the alert change, sent outside any request, retried
with backoff, every attempt on the alert's timeline; a grid outage is one notification."""

from datetime import timedelta

import pytest
from django.db import transaction

from lianxin.alerts.models import Action, Alert
from lianxin.alerts.service import apply_findings
from lianxin.care.models import Household, TransformerArea
from lianxin.care.seed import seed_demo_town
from lianxin.notify.models import Attempt, Notification
from tests.alerts.helpers import NOW, enroll, finding, outage, town
from tests.notify.helpers import at, staff_channels, work
from tests.notify.receivers import HTTPReceiver

pytestmark = pytest.mark.django_db


def test_an_alert_reaches_the_duty_channel_and_the_timeline_says_so(receiver):
    town()
    staff_channels(receiver.url)
    home = enroll(Household.objects.first())
    (alert,) = apply_findings([finding(home)], now=NOW)
    assert Notification.objects.filter(alert=alert, status="pending").count() == 1
    work(at(seconds=5))
    (got,) = receiver.got
    assert got.path == "/duty"
    assert got.json["link"].endswith(f"/alerts/{alert.pk}/")
    assert home.code in got.json["title"]
    ev = alert.events.get(action=Action.NOTIFIED)
    assert ev.data["channel"] == "duty" and ev.data["ok"] and ev.data["attempt"] == 1
    assert ev.data["response"].startswith("200")


def test_the_outbox_row_rolls_back_with_the_alert(receiver):
    town()
    staff_channels(receiver.url)
    home = enroll(Household.objects.first())
    with pytest.raises(RuntimeError), transaction.atomic():
        apply_findings([finding(home)], now=NOW)
        raise RuntimeError("the alert change fails after the outbox write")
    assert not Alert.objects.exists()
    assert not Notification.objects.exists()


def test_fail_twice_then_succeed_is_one_delivery_with_one_key():
    town()
    with HTTPReceiver(script=[503, 503]) as r:
        staff_channels(r.url)
        home = enroll(Household.objects.first())
        (alert,) = apply_findings([finding(home, severity="warning", kind="high_load")], now=NOW)
        # Backoff: 10 s after the first failure, 20 s after the second.
        work(at(seconds=5), at(seconds=10), at(seconds=16), at(seconds=40), at(seconds=90))
        assert [g.status for g in r.got if g.path == "/duty"] == [503, 503, 200]
        assert len({g.headers["Idempotency-Key"] for g in r.got}) == 1
    n = Notification.objects.get(alert=alert, channel__name="duty")
    assert (n.status, n.attempts) == ("sent", 3)
    actions = list(alert.events.filter(data__channel="duty").values_list("action", flat=True))
    assert actions == [Action.NOT_DELIVERED, Action.NOT_DELIVERED, Action.NOTIFIED]


def test_a_permanent_failure_is_not_retried():
    town()
    with HTTPReceiver(script=[404]) as r:
        duty, _lead = staff_channels(r.url)
        home = enroll(Household.objects.first())
        (alert,) = apply_findings([finding(home)], now=NOW)
        work(at(seconds=5), at(minutes=1), at(minutes=2))
        assert len([g for g in r.got if g.path == "/duty"]) == 1
    n = Notification.objects.get(alert=alert, channel=duty)
    assert n.status == "failed" and "404" in n.last_error
    assert Attempt.objects.get(notification=n).permanent
    duty.refresh_from_db()
    assert "404" in duty.last_error


def test_a_grid_outage_of_40_homes_is_one_incident_notification(receiver):
    seed_demo_town(seed=5, households=80, areas=2)
    area = TransformerArea.objects.order_by("code").first()
    homes = [enroll(h) for h in Household.objects.filter(transformer_area=area)]
    assert len(homes) == 40
    staff_channels(receiver.url)
    # The per-home alarms come first in the batch; the outage is applied first all the same, so
    # each is inhibited in the transaction that opens it and nothing waits: when they commit no
    # per-home notification is left to send.
    apply_findings([finding(h) for h in homes] + [outage(area, homes)], now=NOW)
    assert not Notification.objects.filter(alert__kind="no_power").exclude(status="cancelled")
    work(at(seconds=0), at(seconds=30))
    duty = [g for g in receiver.got if g.path == "/duty"]
    assert len(duty) == 1
    grid = Alert.objects.get(kind="grid_outage")
    # Applied first: no home's alarm was ever committed open, for a worker to send at once.
    assert grid.pk < min(Alert.objects.filter(kind="no_power").values_list("pk", flat=True))
    assert duty[0].json["link"].endswith(f"/alerts/{grid.pk}/")
    assert Notification.objects.filter(alert__kind="no_power", status="sent").count() == 0


def test_system_events_go_through_the_same_channels(receiver):
    from lianxin.notify.service import enqueue_system

    duty, lead = staff_channels(receiver.url)
    lead.language = "en"
    lead.save()
    rows = enqueue_system(
        "monitor-stopped",
        "critical",
        "监测进程已停止 5 分钟",
        "The monitor stopped 5 min ago",
        link="http://127.0.0.1:8000/healthz",
        roles=("duty", "lead"),
        at=NOW,
    )
    assert len(rows) == 2
    assert enqueue_system("monitor-stopped", "critical", "x", "x", at=NOW) == []
    work(at(seconds=1))
    by_path = {g.path: g.json for g in receiver.got}
    assert by_path["/duty"]["text"] == "监测进程已停止 5 分钟"
    assert by_path["/lead"]["text"] == "The monitor stopped 5 min ago"
    assert by_path["/lead"]["link"] == "http://127.0.0.1:8000/healthz"
    with pytest.raises(ValueError):
        enqueue_system("x", "urgent", "x", "x")


def test_backoff_grows_and_is_bounded():
    from lianxin.notify.worker import BACKOFF_MAX, backoff

    assert backoff(1) == timedelta(seconds=10)
    assert backoff(2) == timedelta(seconds=20)
    assert backoff(30) == BACKOFF_MAX
