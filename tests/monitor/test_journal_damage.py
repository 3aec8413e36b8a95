"""What kill -9, a power cut or a damaged disk can leave of the monitor's state on disk (a
journal record cut short or with flipped bytes, a hole in the journal, a damaged checkpoint, the
temporaries of writes that never finished) must neither stop the monitor for good nor be dropped
silently. What cannot be read is moved to monitor/damaged/ with a log line and a record naming
the file and why (the data-health page shows it); the monitor starts from what is sound and the
next step reads again from the readings store what the lost steps had judged, so nothing
accepted is lost: the final state equals that of a monitor that was never damaged."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

from lianxin.alerts.models import Alert
from lianxin.datahealth.service import by_store_day
from lianxin.monitor import Monitor
from tests.monitor.test_checkpoint import assert_same_state, crash, power_cut
from tests.monitor.test_monitor import HOMES, LIVE, town, with_history  # noqa: F401

pytestmark = pytest.mark.django_db
TZ = "Asia/Shanghai"
HALF = timedelta(minutes=30)


def journal(monitor) -> list[Path]:
    return sorted(monitor.journal_dir.glob("*.rec"))


def set_aside(home: Path) -> list[dict]:
    path = home / "monitor" / "damaged" / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def five_steps(tmp_path, **options) -> Monitor:
    """A monitor that learned a week, then judged two hours of a power cut at Mr. Du's home in
    four half-hour steps (journal records 1..5), and was killed (nothing written at exit)."""
    stores, monitor = with_history(tmp_path, 7, **options)
    monitor.step(LIVE, raise_alerts=False)
    power_cut(stores)
    for k in range(1, 5):
        monitor.step(LIVE + k * HALF)
    assert Alert.objects.filter(kind="no_power").count() == 1
    crash(monitor)
    return monitor


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x5A
    path.write_bytes(bytes(data))


def test_a_torn_last_record_is_set_aside_and_its_interval_judged_again(town, tmp_path):  # noqa: F811
    before = five_steps(tmp_path, checkpoint_every=timedelta(days=1))
    *sound, last = journal(before)
    size = last.stat().st_size
    with open(last, "r+b") as fh:  # what a power cut can leave of a file's last pages
        fh.truncate(size // 2)

    again = Monitor(tmp_path, TZ, history_days=7, checkpoint_every=timedelta(days=1))
    assert journal(again) == sound
    [record] = set_aside(tmp_path)
    assert record["file"] == f"journal/{last.name}" and "cut short" in record["reason"]
    assert (tmp_path / "monitor" / record["moved_to"]).stat().st_size == size // 2
    [today] = by_store_day(1, tmp_path)  # the data-health page's row for today
    assert [(d["dataset"], d["moved_to"]) for d in today.damaged] == [
        ("monitor", record["moved_to"])
    ]
    assert again.engine.now == int((LIVE + 3 * HALF).timestamp())
    # Its interval is still in the store: the next step judges it again.
    report = again.step(LIVE + 4 * HALF)
    assert report.readings == len(HOMES)
    assert_same_state(again.engine, before.engine)
    assert Alert.objects.filter(kind="no_power").count() == 1
    again.close()


def test_flipped_bytes_in_a_record_set_it_and_the_ones_after_it_aside(town, tmp_path):  # noqa: F811
    before = five_steps(tmp_path, checkpoint_every=timedelta(days=1))
    records = journal(before)
    flip(records[2], records[2].stat().st_size - 100)  # inside step 3's readings

    again = Monitor(tmp_path, TZ, history_days=7, checkpoint_every=timedelta(days=1))
    assert journal(again) == records[:2]
    reasons = {Path(r["file"]).name: r["reason"] for r in set_aside(tmp_path)}
    assert set(reasons) == {p.name for p in records[2:]}
    assert "checksum" in reasons[records[2].name]
    assert f"after {records[2].name}" in reasons[records[4].name]
    assert again.engine.now == int((LIVE + HALF).timestamp())
    report = again.step(LIVE + 4 * HALF)  # three intervals, read again from the store
    assert report.readings == 3 * len(HOMES)
    assert_same_state(again.engine, before.engine)
    assert Alert.objects.filter(kind="no_power").count() == 1
    again.close()


def test_a_hole_in_the_journal_does_not_stop_the_monitor(town, tmp_path):  # noqa: F811
    before = five_steps(tmp_path, checkpoint_every=timedelta(days=1))
    records = journal(before)
    records[3].unlink()
    (before.journal_dir / "copy of 000000000002.rec").write_bytes(records[1].read_bytes())
    again = Monitor(tmp_path, TZ, history_days=7, checkpoint_every=timedelta(days=1))
    assert journal(again) == records[:3]
    stray, record = set_aside(tmp_path)
    assert stray["file"] == "journal/copy of 000000000002.rec"
    assert stray["reason"] == "not a journal record's name"
    assert record["file"] == f"journal/{records[4].name}"
    assert f"after step {records[2].stem.lstrip('0')}" in record["reason"]
    again.step(LIVE + 4 * HALF)
    assert_same_state(again.engine, before.engine)
    again.close()


def test_a_damaged_checkpoint_falls_back_to_the_one_before_and_its_journal(town, tmp_path):  # noqa: F811
    # A checkpoint after every step: the current one (step 5) and the one before (step 4).
    before = five_steps(tmp_path, checkpoint_every=timedelta(0))
    state = before.state_path
    flip(state, state.stat().st_size // 2)  # in the middle of an array

    again = Monitor(tmp_path, TZ, history_days=7)
    [record] = set_aside(tmp_path)
    assert record["file"] == "engine.state" and "BadZipFile" in record["reason"]
    assert not state.exists() or again.engine.extra.get("seq") != 5
    assert again.seq == 5
    assert_same_state(again.engine, before.engine)
    again.step(LIVE + 4 * HALF)  # nothing new: it judged all of it already
    assert Alert.objects.filter(kind="no_power").count() == 1
    again.close()
    # The clean stop wrote a sound state: the next start takes it.
    last = Monitor(tmp_path, TZ, history_days=7)
    assert_same_state(last.engine, before.engine)
    last.close()


def test_no_sound_checkpoint_at_all_relearns_from_the_store(town, tmp_path):  # noqa: F811
    before = five_steps(tmp_path, checkpoint_every=timedelta(0))
    before.state_path.write_bytes(b"")  # a power cut on a file system that lost the data
    (before.dir / "engine.state.prev").unlink(missing_ok=True)

    again = Monitor(tmp_path, TZ, history_days=7)
    files = {r["file"] for r in set_aside(tmp_path)}
    assert "engine.state" in files
    assert again.engine.now is None and not journal(again)  # a first start, from the store
    report = again.step(LIVE + 4 * HALF)
    assert report.readings > 7 * 48 * len(HOMES) - 10  # the week learned again
    assert set(again.engine.ids) == set(before.engine.ids)
    assert Alert.objects.filter(kind="no_power", resolved_at__isnull=True).count() == 1
    again.close()


def test_outcomes_handed_over_in_a_record_set_aside_are_handed_over_again(town, tmp_path):  # noqa: F811
    stores, monitor = with_history(tmp_path, 7, checkpoint_every=timedelta(days=1))
    monitor.step(LIVE, raise_alerts=False)
    power_cut(stores)
    monitor.step(LIVE + 2 * HALF)
    alert = Alert.objects.get(kind="no_power")
    Alert.objects.filter(pk=alert.pk).update(resolved_at=LIVE + 2 * HALF, outcome="false_alarm")
    report = monitor.step(LIVE + 3 * HALF)
    assert report.outcomes == 1
    crash(monitor)
    last = journal(monitor)[-1]
    flip(last, 20)  # its header

    again = Monitor(tmp_path, TZ, history_days=7, checkpoint_every=timedelta(days=1))
    assert [Path(r["file"]).name for r in set_aside(tmp_path)] == [last.name]
    alert.refresh_from_db()
    assert alert.fed_back_at is None  # the engine never got it: to be handed over again
    assert again.step(LIVE + 3 * HALF).outcomes == 1
    again.close()


CHILD = """
import os, signal, sys, time
from datetime import timedelta
from lianxin.monitor import Monitor
from lianxin.engine.core import Engine

home, what = sys.argv[1], sys.argv[2]
monitor = Monitor(home, "Asia/Shanghai", history_days=7, checkpoint_every=timedelta(0),
                  background_bytes=0)

def stall(fh):  # half the bytes on disk, then wait for the kill
    fh.write(b"x" * 4096)
    fh.flush()
    os.fsync(fh.fileno())
    print("writing", flush=True)
    time.sleep(60)

if what == "journal":
    import lianxin.monitor.loop as loop
    real = loop.atomic_write
    from contextlib import contextmanager
    @contextmanager
    def torn(path, *a, **k):
        with real(path, *a, **k) as fh:
            stall(fh)
            yield fh
    loop.atomic_write = torn
    monitor._journal({}, monitor.engine.now + 1800, True)
else:
    Engine.snapshot = lambda self, out, extra=None: stall(out)
    monitor.seq += 1  # a step's worth the checkpoint is behind
    monitor._maybe_checkpoint()  # forks the writer
    time.sleep(60)
"""


@pytest.mark.parametrize("what", ["journal", "checkpoint"])
def test_kill_9_mid_write_leaves_nothing_that_stops_or_fills_the_disk(town, tmp_path, what):  # noqa: F811
    """A real monitor process killed -9 while it writes a journal record, or while its forked
    child writes the checkpoint: the temporary left behind is removed at the next start (a
    checkpoint's is as big as the state: gigabytes at a million homes) and nothing is lost."""
    before = five_steps(tmp_path, checkpoint_every=timedelta(0))
    seq = before.seq
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(tmp_path), what],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    left = [p for p in (tmp_path / "monitor").rglob(".*.tmp")]
    for _ in range(50):  # the checkpoint child dies with its parent, a moment later
        if what == "journal" or not _alive(left):
            break
        time.sleep(0.1)
    assert left, "the kill left no temporary: the test did not kill mid-write"

    again = Monitor(tmp_path, TZ, history_days=7)
    assert not list((tmp_path / "monitor").rglob(".*.tmp"))
    assert again.seq == seq and not set_aside(tmp_path)  # never completed: not damage
    assert_same_state(again.engine, before.engine)
    again.step(LIVE + 5 * HALF)
    assert Alert.objects.filter(kind="no_power").count() == 1
    again.close()


def _alive(paths: list[Path]) -> bool:
    """Whether a process still has one of these files open (the checkpoint child)."""
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                if Path(os.readlink(fd)) in paths:
                    return True
        except OSError:
            continue
    return False


def test_records_written_before_they_had_a_checksum_are_still_stepped_through(town, tmp_path):  # noqa: F811
    before = five_steps(tmp_path, checkpoint_every=timedelta(days=1))
    for path in journal(before):  # as the monitor wrote them before: header line, frames
        data = path.read_bytes()
        assert data.startswith(b"LXJ2 ")
        path.write_bytes(data[data.index(b"\n") + 1 :])
    again = Monitor(tmp_path, TZ, history_days=7, checkpoint_every=timedelta(days=1))
    assert again.seq == 5 and not set_aside(tmp_path)
    assert_same_state(again.engine, before.engine)
    again.close()
