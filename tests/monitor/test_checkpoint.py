"""The monitor's state on disk is a checkpoint plus a journal of steps: a monitor that dies
without writing its state (kill -9) comes back exactly where it was, and the registry is read
again only when it changed."""

from datetime import time, timedelta

import numpy as np
import polars as pl
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


def test_a_large_registry_is_read_with_the_cycle_collector_paused_then_kept_from_it(
    town,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """At a million homes (here: any size) the collector is paused while the registry is read
    and what is alive afterwards is frozen out of its reach; the monitor works as before,
    through a background checkpoint (a fork of the frozen process) and a restart."""
    import gc

    from lianxin.care import registry
    from lianxin.monitor import loop

    monkeypatch.setattr(loop, "FREEZE_FROM_METERS", 0)
    collecting = []
    meters_frame = registry.meters_frame
    monkeypatch.setattr(
        registry, "meters_frame", lambda *a: collecting.append(gc.isenabled()) or meters_frame(*a)
    )
    try:
        stores, monitor = with_history(
            tmp_path, 7, checkpoint_every=timedelta(0), background_bytes=0
        )
        monitor.step(LIVE, raise_alerts=False)
        assert collecting == [False] and gc.isenabled() and gc.get_freeze_count() > 0
        power_cut(stores)
        monitor.step(LIVE + timedelta(hours=1))
        assert Alert.objects.filter(kind="no_power").count() == 1
        monitor._wait_child()
        crash(monitor)
        again = Monitor(tmp_path, "Asia/Shanghai")
        assert_same_state(again.engine, monitor.engine)
        again.close()
    finally:
        gc.unfreeze()


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


def _registry_of(monitor):
    eng = monitor.engine
    return (
        monitor.meters.sort("meter"),
        monitor.accounts.sort("account"),
        monitor._settings.sort(monitor._settings.columns),
        monitor._one_meter_each,
        {h: eng.area_names[eng.a.area[r]] for h, r in eng.index.items()},
        eng.a.quiet_mask.copy(),
        eng.a.sens.copy(),
    )


def test_an_edit_in_the_web_app_reads_its_homes_again_not_the_whole_registry(
    town,  # noqa: F811
    tmp_path,
    settings,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    """At a million homes the whole registry takes seconds to read: an edit names its homes
    and only those are read again, with the same result as reading everything."""
    from lianxin.care import registry

    settings.LIANXIN_HOME = tmp_path
    stores, monitor = with_history(tmp_path, 3, resync_every=timedelta(days=1))
    monitor.step(LIVE, raise_alerts=False)
    read = []
    real = registry.meters_frame
    monkeypatch.setattr(
        registry, "meters_frame", lambda homes=None: read.append(homes) or real(homes)
    )
    with django_capture_on_commit_callbacks(execute=True):
        area2 = TransformerArea.objects.create(code="TA2", name="三苏路2号台区")  # no home yet
    monitor.step(LIVE + timedelta(minutes=30), raise_alerts=False)
    assert read == [None]  # an area changed: any home may have, everything is read
    read.clear()
    with django_capture_on_commit_callbacks(execute=True):
        du = CareRecipient.objects.get(household__code=HOMES[0])
        du.quiet_hours_start, du.quiet_hours_end, du.sensitivity = time(22), time(6), "high"
        du.save()
        moved = Household.objects.get(code=HOMES[1])
        moved.transformer_area = area2
        moved.save()
        # A meter taken from one home to another (both are read again), a second meter for a
        # home (two meters of one kind: readings are summed), and a new home.
        m2 = Meter.objects.get(number="M2")
        m2.household = Household.objects.get(code=HOMES[3])
        m2.save()
        Meter.objects.create(number="M0b", account_number="A0", household=du.household)
        new = Household.objects.create(code="NEW1", address="x", transformer_area=area2)
        Meter.objects.create(number="M9", account_number="A9", household=new)
    row = monitor.engine.index[HOMES[0]]
    assert monitor.engine.a.quiet_mask[row] == 0
    monitor.step(LIVE + timedelta(hours=1), raise_alerts=False)
    assert [sorted(h) for h in read] == [sorted([HOMES[0], HOMES[1], HOMES[2], HOMES[3], "NEW1"])]
    assert monitor.engine.a.quiet_mask[row] != 0 and "NEW1" in monitor.engine.index
    assert monitor.meters.filter(pl.col("meter") == "M2")["household_id"].to_list() == [HOMES[3]]
    assert not monitor._one_meter_each
    targeted = _registry_of(monitor)
    monitor._record = {}
    monitor.sync_registry()  # everything read: nothing more to hand the engine, the same registry
    assert monitor._record == {}
    for a, b in zip(targeted, _registry_of(monitor), strict=True):
        if isinstance(a, pl.DataFrame):
            assert a.equals(b)
        elif isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b
    # A resident's edit alone: the meters are as they were, the registry is not rebuilt.
    kept, sens = monitor._registry, monitor.engine.a.sens[row]
    with django_capture_on_commit_callbacks(execute=True):
        du.sensitivity = "low"
        du.save()
    monitor.step(LIVE + timedelta(hours=1, minutes=30), raise_alerts=False)
    assert monitor._registry is kept and monitor.engine.a.sens[row] != sens
    assert monitor._settings.filter(pl.col("household_id") == HOMES[0])[
        "sensitivity"
    ].to_list() == ["low"]
    monitor.close()


def test_a_row_added_in_bulk_beside_an_edit_still_reads_the_whole_registry(
    town,  # noqa: F811
    tmp_path,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.LIANXIN_HOME = tmp_path
    stores, monitor = with_history(tmp_path, 3, resync_every=timedelta(days=1))
    monitor.step(LIVE, raise_alerts=False)
    with django_capture_on_commit_callbacks(execute=True):
        du = CareRecipient.objects.get(household__code=HOMES[0])
        du.sensitivity = "high"
        du.save()
    assert monitor._registry_change()[0] == {HOMES[0]}
    # Bulk writes send no signal: a meter for another home, with no stamp naming it.
    Meter.objects.bulk_create(
        [Meter(number="M9", account_number="A9", household=Household.objects.get(code=HOMES[2]))]
    )
    assert monitor._registry_change()[0] is None
    monitor.step(LIVE + timedelta(minutes=30), raise_alerts=False)
    assert "M9" in monitor.meters["meter"].to_list() and not monitor.registry_changed()
    monitor.close()
