"""kill -9 a writer in the middle of a stream of writes: every write that returned is there
afterwards, the store reads cleanly, and a half-written file never shows up."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta

from lianxin.store import ReadingsStore

T0 = datetime(2024, 3, 1, tzinfo=UTC)

WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    import polars as pl
    from lianxin.store import ReadingsStore

    store = ReadingsStore(sys.argv[1])
    store.auto_compact_files = 8  # compactions happen while we kill, too
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    for i in range(100000):
        df = pl.DataFrame({
            "meter": [f"m{i}"] * 2000,
            "ts": [t0 + timedelta(minutes=15 * j) for j in range(2000)],
            "value": [float(i)] * 2000,
            "unit": ["kWh"] * 2000,
        })
        store.write(df)
        print(i, flush=True)  # acknowledged only after write() returned
    """
)


def test_kill_9_loses_no_acknowledged_write(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    acked = []
    deadline = time.monotonic() + 60
    while len(acked) < 25 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acked.extend(int(x) for x in proc.stdout.read().split())
    assert len(acked) >= 25
    store = ReadingsStore(tmp_path)
    df = store.read(None, T0, T0 + timedelta(days=30))
    counts = dict(df.group_by("meter").len().iter_rows())
    for i in acked:
        assert counts.get(f"m{i}") == 2000, i
    # Whatever was mid-write is either wholly there or not at all.
    assert all(n == 2000 for n in counts.values())
    # The store still takes writes and compacts after the crash.
    store.compact(full=True)
    assert store.read(None, T0, T0 + timedelta(days=30)).height == df.height
