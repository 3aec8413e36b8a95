"""The monitor's state on disk is a checkpoint plus a journal of steps: a monitor that dies
without writing its state (kill -9) comes back exactly where it was, and the registry is read
again only when it changed."""

from datetime import time, timedelta

import numpy as np
import pytest

from lianxin.alerts.models import Alert
from lianxin.care.models import CareRecipient, Household, Meter, TransformerArea
from lianxin.monitor import Monitor
from tests.monitor.test_monitor import HOMES, LIVE, readings, town, with_history  # noqa: F401

pytestmark = pytest.mark.django_db


def assert_same_state(a, b):
    assert a.now == b.now and a.hour_end == b.hour_end and a.ids == b.ids
    for name in a.spec:
        np.testing.assert_array_equal(a.a[name], b.a[name], err_msg=name)
    np.testing.assert_array_equal(a.g.outage_since, b.g.outage_since)


def crash(monitor: Monitor) -> None:
    """What kill -9 leaves: the lock released, nothing written at exit."""
    monitor._lock.close()


def power_cut(stores, hours: int = 2):
    feed = readings(LIVE, LIVE + timedelta(hours=hours))
    stores.readings.write(feed.with_columns(value=feed["value"].set(feed["meter"] == "M0", 0.0)))


def test_a_monitor_killed_between_checkpoints_resumes_from_the_journal(town, tmp_path):  # noqa: F811
    stores, monitor = with_history(tmp_path, 7, checkpoint_every=timedelta(days=1))
    monitor.step(LIVE, raise_alerts=False)
    power_cut(stores)
    for k in range(1, 5):
        monitor.step(LIVE + timedelta(minutes=30 * k))
    assert Alert.objects.filter(kind="no_power").count() == 1
    assert not monitor.state_path.exists()  # no checkpoint yet: five journal records
    assert len(list(monitor.journal_dir.glob("*.rec"))) == 5
    crash(monitor)

    again = Monitor(tmp_path, "Asia/Shanghai", checkpoint_every=timedelta(days=1))
    assert_same_state(again.engine, monitor.engine)
    # The journaled steps' findings are applied again, and apply_findings skips them.
    assert again.step(LIVE + timedelta(hours=2)).findings == []
    assert Alert.objects.filter(kind="no_power").count() == 1
    again.close()  # a clean stop writes the state: a restart steps through no record
    assert again.state_path.exists()
    # (The records before it are kept until the next checkpoint: see test_journal_damage.)
    assert all(int(p.stem) <= again.seq for p in again.journal_dir.glob("*.rec"))
    last = Monitor(tmp_path, "Asia/Shanghai")
    assert_same_state(last.engine, again.engine)
    last.close()


def test_a_step_cut_short_before_its_alerts_loses_nothing(town, tmp_path, monkeypatch):  # noqa: F811
    stores, monitor = with_history(tmp_path, 7)
    monitor.step(LIVE, raise_alerts=False)
    power_cut(stores)
    # The step is journaled, then the process dies before apply_findings: the restart applies.
    import lianxin.alerts.service as service

    def killed(*args, **kwargs):
        raise SystemExit("killed")

    with monkeypatch.context() as m:
        m.setattr(service, "apply_findings", killed)
        with pytest.raises(SystemExit):
            monitor.step(LIVE + timedelta(hours=2))
    crash(monitor)
    assert not Alert.objects.exists()
    again = Monitor(tmp_path, "Asia/Shanghai")
    again.step(LIVE + timedelta(hours=2))
    assert Alert.objects.filter(kind="no_power", household__code=HOMES[0]).count() == 1
    again.close()


def test_a_large_state_is_checkpointed_by_a_background_child(town, tmp_path):  # noqa: F811
    stores, monitor = with_history(tmp_path, 7, checkpoint_every=timedelta(0), background_bytes=0)
    monitor.step(LIVE, raise_alerts=False)
    assert monitor._child is not None  # forked: the step did not wait for the write
    power_cut(stores)
    monitor.step(LIVE + timedelta(hours=1))
    monitor._wait_child()
    seq = monitor._checkpointed_seq
    assert seq >= 1 and monitor.state_path.exists()
    # Kept: the records after the checkpoint before it (engine.state.prev), in case this one
    # is found damaged.
    assert all(int(p.stem) > monitor._prev_seq for p in monitor.journal_dir.glob("*.rec"))
    crash(monitor)
    again = Monitor(tmp_path, "Asia/Shanghai")
    assert again.engine.extra["seq"] == seq
    assert_same_state(again.engine, monitor.engine)
    again.close()


def test_the_registry_is_read_again_only_when_it_changed(
    town,  # noqa: F811
    tmp_path,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.LIANXIN_HOME = tmp_path
    stores, monitor = with_history(tmp_path, 3, resync_every=timedelta(days=1))
    monitor.step(LIVE, raise_alerts=False)
    assert not monitor.registry_changed()
    row = monitor.engine.index[HOMES[0]]
    assert monitor.engine.a.quiet_mask[row] == 0
    # Saved through the ORM (the admin, a form): the web app stamps the data directory.
    with django_capture_on_commit_callbacks(execute=True):
        du = CareRecipient.objects.get(household__code=HOMES[0])
        du.quiet_hours_start, du.quiet_hours_end = time(22), time(6)
        du.save()
    assert monitor.registry_changed()
    monitor.step(LIVE + timedelta(minutes=30), raise_alerts=False)
    assert monitor.engine.a.quiet_mask[row] != 0
    assert not monitor.registry_changed()
    area = TransformerArea.objects.get(code="TA1")
    home = Household.objects.create(code="NEW1", address="x", transformer_area=area)
    # A bulk import sends no signal: the newest meter tells.
    Meter.objects.bulk_create([Meter(number="M9", account_number="A9", household=home)])
    assert monitor.registry_changed()
    monitor.step(LIVE + timedelta(hours=1), raise_alerts=False)
    assert "NEW1" in monitor.engine.index and not monitor.registry_changed()
    monitor.close()
