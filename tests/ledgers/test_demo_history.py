"""The demo town's year of history: worked like real cases, and figures that look real."""

from datetime import timedelta

import pytest
from django.utils import timezone

from lianxin.alerts.models import Action, Alert, AlertEvent
from lianxin.care.seed import seed_demo_town
from lianxin.dispatch.models import WorkOrder
from lianxin.ledgers.demo import seed_history
from lianxin.ledgers.figures import Period, Scope, figures
from lianxin.ledgers.models import Activity, Campaign, Inspection

pytestmark = pytest.mark.django_db


def test_a_year_of_history_gives_every_figure_something_to_show():
    seed_demo_town(seed=5, households=120, areas=4)
    now = timezone.now()
    h = seed_history(seed=5, now=now)
    assert h.alerts > 100 and h.inspections >= 12 and h.activities > 50
    # Every history alert is closed and was never handed to the engine as a real outcome.
    assert not Alert.objects.filter(resolved_at__isnull=True).exists()
    assert not Alert.objects.filter(fed_back_at__isnull=True).exists()
    # Each alert's log begins with its opening and ends with its resolution, in time order.
    for a in Alert.objects.order_by("?")[:20]:
        events = list(a.events.order_by("at", "id"))
        assert events[0].action == Action.OPENED and events[-1].action == Action.RESOLVED
        assert [e.at for e in events] == sorted(e.at for e in events)
    # Work orders come from all four origins and every done one has its times in order.
    assert set(WorkOrder.objects.values_list("source", flat=True)) == {
        "alert",
        "hotline",
        "inspection",
        "campaign",
    }
    for o in WorkOrder.objects.filter(status="done"):
        assert o.created_at <= o.arrived_at <= o.done_at <= now
    assert Campaign.objects.get().days_log.count() == 8
    assert Inspection.objects.filter(done_at__isnull=False).count() == h.inspections
    assert Activity.objects.filter(on__gt=now.date()).count() == 0

    last = Period.containing((now - timedelta(days=now.day + 1)).date())
    f = figures(Scope(last), now=now)
    assert f["visits"] > 0 and f["alerts"] > 0 and f["activities"] > 0
    assert 0.9 <= f["satisfaction_rate"] <= 1.0
    assert 0 < f["response"]["ack"]["median"] < f["response"]["arrival"]["median"]
    assert any(k["false_share"] for k in f["alerts_by_kind"])

    again = seed_history(seed=5, now=now)
    assert again.alerts == 0 and AlertEvent.objects.filter(alert__evidence__history=True).exists()
