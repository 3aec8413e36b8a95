"""`lianxin store backup DEST`: a copy of the stores taken while writers and compaction go on
holds every batch acknowledged before it began, each row once, reads back as the store does,
and a second run copies only what is new and drops what compaction merged away."""

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import polars as pl

from lianxin.cli import main
from lianxin.store import ReadingsStore, open_stores

T0 = datetime(2024, 3, 1, tzinfo=UTC)
ROWS = 48


def batch(i: int) -> pl.DataFrame:
    # Batches over three UTC days; every tenth from batch 10 on corrects meter m0000's values.
    meter = "m0000" if i >= 10 and i % 10 == 0 else f"m{i:04d}"
    return pl.DataFrame(
        {
            "meter": [meter] * ROWS,
            "ts": [T0 + timedelta(days=i % 3, minutes=30 * k) for k in range(ROWS)],
            "value": [float(i)] * ROWS,
            "unit": ["kWh"] * ROWS,
        }
    )


def rows(store: ReadingsStore) -> pl.DataFrame:
    return store.read().sort("meter", "ts", "unit")


def test_a_backup_taken_while_writing_and_compacting_holds_every_acknowledged_batch(
    tmp_path, capsys
):
    home, dest = tmp_path / "home", tmp_path / "copy"
    live = open_stores(home).readings
    live.auto_compact_files = 4  # write() compacts every few batches: files vanish meanwhile
    for i in range(10):
        live.write(batch(i))
    acked = 10
    stop = threading.Event()

    def write():
        nonlocal acked
        i = 10
        while not stop.is_set() and i < 400:
            live.write(batch(i))
            acked = i + 1
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(4):
            before = acked
            assert main(["store", "backup", str(dest), "--home", str(home)]) == 0
            copy = rows(ReadingsStore(dest / "readings"))
            # Everything acknowledged before the backup began is in it, once per key.
            want = {f"m{i:04d}" for i in range(before) if not (i >= 10 and i % 10 == 0)}
            assert want <= set(copy["meter"]), sorted(want - set(copy["meter"]))[:5]
            assert copy.select("meter", "ts", "unit").is_duplicated().sum() == 0
    finally:
        stop.set()
        writer.join()
    out = capsys.readouterr().out
    assert "compacted away and removed from the copy" in out and "is up to date" in out

    # Once the writers are still, the copy equals the store, row for row and version for
    # version, and a further run copies nothing.
    assert main(["store", "backup", str(dest), "--home", str(home)]) == 0
    assert rows(ReadingsStore(dest / "readings")).equals(rows(live))
    copied = ReadingsStore(dest / "readings").read(all_versions=True).sort(pl.all())
    assert copied.equals(live.read(all_versions=True).sort(pl.all()))
    assert main(["store", "backup", str(dest), "--home", str(home)]) == 0
    assert "readings: 0 file(s) copied" in capsys.readouterr().out
    assert not list((home / "readings").glob(".backup-*"))  # no pinned links left behind
    # Pins left by a backup that was killed are removed by the next one; a live one's stay.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    (home / "readings" / f".backup-{dead}-0" / "day=2024-03-01").mkdir(parents=True)
    (home / "readings" / f".backup-{os.getppid()}-0").mkdir()
    assert main(["store", "backup", str(dest), "--home", str(home)]) == 0
    assert [p.name for p in (home / "readings").glob(".backup-*")] == [
        f".backup-{os.getppid()}-0"
    ]

    # The copy is a sound store; a backup inside the data directory is refused in one line.
    check = subprocess.run(
        [sys.executable, "-m", "lianxin", "store", "check", "--home", str(dest)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and "0 damaged" in check.stdout, check.stdout + check.stderr
    assert main(["store", "backup", str(home / "bk"), "--home", str(home)]) == 1
    assert "must not be inside the data directory" in capsys.readouterr().err
