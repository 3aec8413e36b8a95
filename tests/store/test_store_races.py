"""Reads racing compaction: while one thread writes small batches and compacts them (the old files
vanish under the reader), readers never fail and always see every batch acknowledged before
their read began, each row once."""

import threading
from datetime import UTC, datetime, timedelta

import polars as pl

from lianxin.store import ReadingsStore

T0 = datetime(2024, 3, 1, tzinfo=UTC)
BATCHES = 120
ROWS = 48


def batch(i: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter": [f"m{i:04d}"] * ROWS,
            "ts": [T0 + timedelta(minutes=30 * k) for k in range(ROWS)],  # one UTC day
            "value": [float(i)] * ROWS,
            "unit": ["kWh"] * ROWS,
        }
    )


def test_reads_racing_compaction_see_every_acknowledged_write_once(tmp_path):
    writer_store = ReadingsStore(tmp_path)
    writer_store.auto_compact_files = 4  # write() compacts every few batches
    acked = 0  # batches whose write() has returned
    done = threading.Event()
    problems: list[str] = []
    reads = [0, 0]

    def write():
        nonlocal acked
        try:
            for i in range(BATCHES):
                writer_store.write(batch(i))
                acked = i + 1
                if i % 10 == 9:
                    writer_store.compact(full=True)  # rewrites the day's big file too
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            problems.append(f"writer: {exc!r}")
        finally:
            done.set()

    def read(n: int):
        store = ReadingsStore(tmp_path)  # a reader of its own, as the web app and monitor are
        while not done.is_set() or reads[n] == 0:
            before = acked
            try:
                # The latest value per key, as the engine and the web app read. (With
                # all_versions=True a read overlapping a compaction may list a row in both the
                # old and the merged file: documented in _compact_day.)
                df = store.read()
            except BaseException as exc:  # noqa: BLE001
                problems.append(f"reader {n}: {exc!r}")
                return
            reads[n] += 1
            meters = df["meter"].unique().sort().to_list()
            if df.height != len(meters) * ROWS:
                problems.append(f"reader {n}: {df.height} rows for {len(meters)} meters")
            if meters[:before] != [f"m{i:04d}" for i in range(before)]:
                problems.append(f"reader {n}: missing acknowledged batches (had {before})")

    threads = [threading.Thread(target=write)] + [
        threading.Thread(target=read, args=(n,)) for n in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not problems, problems[:5]
    assert acked == BATCHES and min(reads) > 0
    final = ReadingsStore(tmp_path).read(all_versions=True)
    assert final.height == BATCHES * ROWS
