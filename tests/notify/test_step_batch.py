"""A monitor step writes its outbox rows together: one insert per table for the whole step, in
the step's transaction, with the same rows and timeline as one finding at a time."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from lianxin.alerts import service
from lianxin.alerts.models import Action, Alert, AppliedFinding, AwayPeriod, Status
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


def _seen() -> dict:
    """The alerts, their timelines, the applied findings, the chains and the outbox as the duty
    room sees them, with database ids replaced by the alerts' keys (two runs number rows
    differently)."""
    key = dict(Alert.objects.values_list("pk", "key"))

    def data(d):
        return {k: key[v] if k == "outage" else "away" if k == "away_period" else v
                for k, v in d.items()}  # fmt: skip

    return {
        "alerts": sorted(
            (
                a.key,
                a.status,
                a.severity,
                a.household_id,
                a.transformer_area_id,
                key.get(a.parent_id),
                a.reason_en,
                a.reason_zh,
                a.evidence,
                a.started_at,
                a.detected_at,
                a.last_detected_at,
                a.opened_at,
                a.condition_cleared_at,
                [
                    (e.action, e.from_status, e.to_status, e.note, data(e.data), e.at)
                    for e in a.events.order_by("at", "id")
                ],
            )
            for a in Alert.objects.all()
        ),  # fmt: skip
        "applied": sorted(
            (f.finding_id, f.event, key.get(f.alert_id), f.applied_at, f.finding)
            for f in AppliedFinding.objects.all()
        ),
        "chains": sorted(
            (
                key[e.alert_id],
                e.policy_name,
                e.steps,
                e.next_index,
                e.next_at,
                e.started_at,
                e.stopped_at,
                e.stop_reason,
            )
            for e in Escalation.objects.all()
        ),  # fmt: skip
        "outbox": sorted(
            (
                key[n.alert_id],
                n.channel.name,
                n.to,
                n.address,
                n.step,
                n.severity,
                n.title,
                n.text,
                n.link.replace(f"/{n.alert_id}/", "/<alert>/"),
                n.status,
                n.due_at,
            )
            for n in Notification.objects.select_related("channel")
        ),  # fmt: skip
    }


@pytest.mark.parametrize("mode", ["together", "one insert fails"])
def test_new_alarms_of_a_burst_open_together_exactly_as_one_by_one(mode, monkeypatch):
    """The plain new alarms of a step (most of a burst) open with one insert per table; the
    alerts, timelines, applied findings, chains and outbox are those of applying the findings
    one at a time, beside an update, an escalation, a home inside a grid outage, one away, the
    same home twice, a home nobody enrolled and an unknown one. If the insert together fails
    (a second monitor wrote one of them meanwhile), they are applied one by one instead and
    nothing of the failed attempt is left (no second alert, no notification twice)."""
    seed_demo_town(seed=5, households=40, areas=2)
    staff_channels("http://127.0.0.1:9")
    first, second = TransformerArea.objects.order_by("code")[:2]
    inside, away = [enroll(h) for h in Household.objects.filter(transformer_area=first)[:2]]
    fresh = [enroll(h) for h in Household.objects.filter(transformer_area=second)[:8]]
    updated, twice, fresh = fresh[0], fresh[1], fresh[2:]
    stranger = Household.objects.filter(care_recipients__isnull=True).first()
    apply_findings([outage(first, [inside])], now=NOW - timedelta(minutes=10))
    apply_findings(
        [finding(updated, severity="warning", started=NOW - timedelta(hours=3))],
        now=NOW - timedelta(hours=2),
    )
    AwayPeriod.objects.create(
        household=away, starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(days=1),
        comment="住在女儿家", author=get_user_model().objects.get(username="operator"),
    )  # fmt: skip
    gone = finding(Household(code="H99999"))
    step = [finding(h) for h in fresh] + [
        finding(inside, kind="inactivity", severity="warning"),
        finding(away, kind="inactivity", severity="warning"),
        finding(updated, started=NOW - timedelta(hours=3), detected=NOW),  # critical now
        finding(twice, started=NOW - timedelta(minutes=50)),
        finding(twice, started=NOW - timedelta(minutes=40), severity="warning"),
        finding(stranger),
        gone,
    ]
    one_by_one, skipped = [], []
    with transaction.atomic():
        for f in step:
            one_by_one += apply_findings([f], now=NOW, skipped=skipped)
        # (One step returns an alert it touched twice once.)
        touched = list(dict.fromkeys(a.key for a in one_by_one))
        expected = _seen(), touched, [f for f, _why in skipped]
        transaction.set_rollback(True)
    assert expected[2] == [gone]

    if mode == "one insert fails":
        record = service._record_applied

        def fails(rows, now, ignore_conflicts=False):
            if not ignore_conflicts:
                raise IntegrityError("UNIQUE constraint failed: a second monitor")
            return record(rows, now, ignore_conflicts)

        monkeypatch.setattr(service, "_record_applied", fails)
    skipped = []
    with CaptureQueriesContext(connection) as q:
        touched = apply_findings(step, now=NOW, skipped=skipped)
    assert (_seen(), [a.key for a in touched], [f for f, _why in skipped]) == expected
    statuses = dict(Alert.objects.values_list("household", "status"))
    assert statuses[inside.pk] == Status.INHIBITED and statuses[away.pk] == Status.SILENCED
    assert Notification.objects.filter(alert__household__in=fresh).count() == len(fresh)
    if mode == "together":
        # The six plain new alarms in one insert; the home inside the outage, the one away and
        # the first of the home found twice one by one.
        assert inserts(q.captured_queries, "alerts_alert") == 1 + 3
    # Applied again: nothing new.
    assert apply_findings(step, now=NOW) == []
    assert _seen() == expected[0]


def test_a_bad_finding_among_new_alarms_is_skipped_alone_with_its_notifications(caplog):
    seed_demo_town(seed=5, households=20, areas=2)
    staff_channels("http://127.0.0.1:9")
    homes = [enroll(h) for h in Household.objects.all()[:5]]
    bad = finding(homes[2], evidence={"meters": {"a set is not JSON"}})
    step = [finding(h) for h in homes[:2]] + [bad] + [finding(h) for h in homes[3:]]
    skipped = []
    touched = apply_findings(step, now=NOW, skipped=skipped)
    assert [a.household_id for a in touched] == [h.pk for h in homes if h != homes[2]]
    assert [f for f, _why in skipped] == [bad] and bad.finding_id in caplog.text
    assert not Alert.objects.filter(household=homes[2]).exists()
    assert not AppliedFinding.objects.filter(finding_id=bad.finding_id).exists()  # sent again
    assert Notification.objects.count() == 4
    assert sorted(Notification.objects.values_list("alert__household", flat=True)) == sorted(
        a.household_id for a in touched
    )
