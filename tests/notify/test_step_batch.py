"""A monitor step writes its outbox rows together: one insert per table for the whole step, in
the step's transaction, with the same rows and timeline as one finding at a time."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from lianxin.alerts import service
from lianxin.alerts.models import Action, Alert
from lianxin.alerts.service import apply_findings
from lianxin.care.models import Household, TransformerArea
from lianxin.care.seed import seed_demo_town
from lianxin.notify.models import Escalation, Notification
from tests.alerts.helpers import NOW, enroll, finding, outage
from tests.notify.helpers import staff_channels

pytestmark = pytest.mark.django_db


def inserts(queries, table):
    return sum(q["sql"].startswith(f'INSERT INTO "{table}"') for q in queries)


def test_a_step_writes_its_outbox_with_one_insert_and_skips_alarms_inside_an_outage():
    seed_demo_town(seed=5, households=40, areas=2)
    staff_channels("http://127.0.0.1:9")
    first, second = TransformerArea.objects.order_by("code")[:2]
    inside = [enroll(h) for h in Household.objects.filter(transformer_area=first)[:3]]
    alone = [enroll(h) for h in Household.objects.filter(transformer_area=second)[:6]]
    step = [finding(h) for h in inside + alone] + [outage(first, inside)]
    with CaptureQueriesContext(connection) as q:
        apply_findings(step, now=NOW)
    assert inserts(q.captured_queries, "notify_notification") == 1
    assert inserts(q.captured_queries, "notify_escalation") == 1
    # The outage and the six homes outside it: step 1 to the duty room (the lead waits 5 min
    # for a critical alarm; an outage reaches the lead at once). Homes inside: nothing at all.
    grid = Alert.objects.get(kind="grid_outage")
    rows = Notification.objects.all()
    assert sorted((n.alert.household_id or 0, n.channel.name) for n in rows) == sorted(
        [(h.pk, "duty") for h in alone] + [(0, "duty"), (0, "lead")]
    )
    assert not Escalation.objects.filter(alert__household__in=inside).exists()
    for alert in Alert.objects.exclude(pk=grid.pk).filter(household__in=alone):
        events = list(alert.events.order_by("at", "id").values_list("action", "data"))
        assert [a for a, _d in events] == [Action.OPENED, Action.ESCALATION]
        assert (events[1][1]["step"], events[1][1]["notifications"]) == (1, 1)
    # Applied again (the monitor retries a step): nothing new.
    with CaptureQueriesContext(connection) as q:
        apply_findings(step, now=NOW)
    assert Notification.objects.count() == len(rows)
    assert inserts(q.captured_queries, "notify_notification") == 0


def test_the_steps_outbox_rolls_back_with_its_alerts():
    seed_demo_town(seed=5, households=20, areas=2)
    staff_channels("http://127.0.0.1:9")
    homes = [enroll(h) for h in Household.objects.all()[:3]]
    with pytest.raises(RuntimeError), transaction.atomic():
        apply_findings([finding(h) for h in homes], now=NOW)
        assert Notification.objects.count() == 3  # written before the step's end
        raise RuntimeError("the caller's transaction fails after the step")
    assert not Alert.objects.exists() and not Notification.objects.exists()
    assert not Escalation.objects.exists()
    # The next step starts afresh (nothing of the failed one is left in the batch).
    apply_findings([finding(homes[0])], now=NOW)
    assert Notification.objects.count() == 1


def test_a_long_step_is_written_in_chunks_each_with_its_own_insert(monkeypatch):
    seed_demo_town(seed=5, households=20, areas=2)
    staff_channels("http://127.0.0.1:9")
    homes = [enroll(h) for h in Household.objects.all()[:5]]
    monkeypatch.setattr(service, "STEP_CHUNK", 2)
    with CaptureQueriesContext(connection) as q:
        touched = apply_findings([finding(h) for h in homes], now=NOW)
    assert len(touched) == 5 and inserts(q.captured_queries, "notify_notification") == 3
    assert Notification.objects.filter(channel__name="duty").count() == 5
    assert Escalation.objects.count() == 5
