"""Damaged and truncated Parquet files in the store: each is found, named, moved to damaged/ and
counted, and everything else goes on (reads, writes for that day, compaction, the monitor);
`lianxin store check` finds even a flipped bit (page checksums) and --repair recovers the rest."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from lianxin.store import ReadingsStore, damaged_files, open_stores

DAY = datetime(2026, 3, 1, tzinfo=UTC)


def frame(meters: list[str], start: datetime, n: int, value: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter": [m for m in meters for _ in range(n)],
            "ts": [start + timedelta(minutes=15 * i) for _ in meters for i in range(n)],
            "value": [value] * (len(meters) * n),
            "unit": ["kWh"] * (len(meters) * n),
        }
    )


def truncate(path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_file_is_set_aside_named_and_counted_and_the_rest_goes_on(
    tmp_path, caplog, damage
):
    store = ReadingsStore(tmp_path / "readings")
    store.write(frame(["M1"], DAY, 8))
    store.write(frame(["M2"], DAY, 8))
    store.write(frame(["M1"], DAY + timedelta(days=1), 8))
    victim = sorted((tmp_path / "readings" / "day=2026-03-01").glob("*.parquet"))[1]
    if damage == "truncated":
        truncate(victim)
    elif damage == "garbage":
        victim.write_bytes(os.urandom(victim.stat().st_size))
    else:
        victim.write_bytes(b"")

    fresh = ReadingsStore(tmp_path / "readings")  # no cached footers
    got = fresh.read()
    # The other files of the day, and the other day, are read; M2's file is gone aside.
    assert sorted(set(got["meter"].to_list())) == ["M1"]
    assert got.height == 16
    assert not victim.exists()
    moved = tmp_path / "readings" / "damaged" / "day=2026-03-01" / victim.name
    assert moved.exists()
    assert victim.name in caplog.text and "damaged" in caplog.text
    [record] = damaged_files(tmp_path)
    assert record["dataset"] == "readings" and record["day"] == "2026-03-01"
    assert victim.name in record["file"] and record["reason"]
    # Writing to that day goes on: M2 sent again is new, and stored.
    result = fresh.write(frame(["M2"], DAY, 8))
    assert result.accepted == 8
    assert fresh.read(["M2"]).height == 8
    assert fresh.compact(full=True) >= 0
    assert fresh.read().height == 24


def test_a_write_meets_a_damaged_file_of_its_day_and_goes_on(tmp_path):
    store = ReadingsStore(tmp_path / "readings")
    store.write(frame(["M1"], DAY, 8))
    [victim] = (tmp_path / "readings" / "day=2026-03-01").glob("*.parquet")
    truncate(victim, 0.9)
    fresh = ReadingsStore(tmp_path / "readings")
    assert fresh.write(frame(["M1"], DAY, 8, value=2.0)).accepted == 8
    assert fresh.read()["value"].to_list() == [2.0] * 8
    assert len(damaged_files(tmp_path)) == 1


def test_store_check_finds_a_flipped_bit_and_repair_recovers_the_sound_row_groups(tmp_path):
    store = ReadingsStore(tmp_path / "readings")
    store.row_group_rows = 100
    # Random values: a flipped bit in a page changes data, not the page structure.
    import random

    rnd = random.Random(7)
    df = frame([f"M{i}" for i in range(4)], DAY, 96).with_columns(
        value=pl.Series([rnd.random() for _ in range(384)])
    )
    store.write(df)
    open_stores(tmp_path)  # the other datasets' folders
    [victim] = (tmp_path / "readings" / "day=2026-03-01").glob("*.parquet")
    data = bytearray(victim.read_bytes())
    data[len(data) // 3] ^= 0x10
    victim.write_bytes(bytes(data))

    def check(*args):
        return subprocess.run(
            [sys.executable, "-m", "lianxin", "store", "check", "--home", str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    found = check()
    assert found.returncode == 1, found.stdout + found.stderr
    assert f"damaged: {victim}" in found.stdout
    assert "1 damaged" in found.stdout
    repaired = check("--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "row(s) recovered" in repaired.stdout
    kept = ReadingsStore(tmp_path / "readings").read()
    # Every row group but the damaged one is back, with its original values.
    assert 0 < kept.height < 384
    assert kept.height % 100 == 0 or kept.height == 384 - 100
    merged = kept.join(df, on=["meter", "ts", "unit"], suffix="_sent")
    assert (merged["value"] == merged["value_sent"]).all()
    assert check().returncode == 0
    assert len(damaged_files(tmp_path)) == 1
