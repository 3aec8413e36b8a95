"""The readings store: durable appends, duplicates kept once, corrections replace, reads by
meters and time range, compaction that loses nothing, and several writers at once."""

import multiprocessing
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
import pytest

from lianxin.store import EventsStore, ReadingsStore, WriteResult, open_stores

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def frame(meters, n=4, value=1.0, start=T0, unit="kWh", received_at=None):
    rows = [
        {"meter": m, "ts": start + timedelta(minutes=15 * i), "value": value + i, "unit": unit}
        for m in meters
        for i in range(n)
    ]
    df = pl.DataFrame(
        rows,
        schema={
            "meter": pl.String,
            "ts": pl.Datetime("us", "UTC"),
            "value": pl.Float64,
            "unit": pl.String,
        },
    )
    if received_at is not None:
        df = df.with_columns(received_at=pl.lit(received_at, dtype=pl.Datetime("us", "UTC")))
    return df


def test_write_then_read_back(tmp_path):
    store = ReadingsStore(tmp_path / "readings")
    res = store.write(frame(["m2", "m1"]))
    assert res == WriteResult(accepted=8)
    out = store.read(None, T0, T0 + timedelta(days=1))
    assert out.columns == ["meter", "ts", "value", "unit", "received_at"]
    assert out["meter"].to_list() == ["m1"] * 4 + ["m2"] * 4
    assert out.filter(pl.col("meter") == "m1")["value"].to_list() == [1.0, 2.0, 3.0, 4.0]


def test_arrow_input_and_partition_by_utc_day(tmp_path):
    store = ReadingsStore(tmp_path)
    store.write(frame(["m1"], n=8, start=T0 - timedelta(hours=1)).to_arrow())
    assert [d.isoformat() for d in store.days()] == ["2024-02-29", "2024-03-01"]
    files = list((tmp_path / "day=2024-03-01").glob("*.parquet"))
    assert len(files) == 1
    assert pl.read_parquet(files[0])["meter"].is_sorted()


def test_same_reading_twice_is_kept_once(tmp_path):
    store = ReadingsStore(tmp_path)
    store.write(frame(["m1"]))
    res = store.write(frame(["m1"]))
    assert res == WriteResult(duplicate=4)
    assert store.read(["m1"], T0, T0 + timedelta(days=1)).height == 4
    assert store.read(["m1"], T0, T0 + timedelta(days=1), all_versions=True).height == 4


def test_correction_replaces_and_keeps_when_each_value_arrived(tmp_path):
    store = ReadingsStore(tmp_path)
    first = datetime(2024, 3, 2, tzinfo=UTC)
    second = datetime(2024, 3, 3, tzinfo=UTC)
    store.write(frame(["m1"], value=1.0, received_at=first))
    res = store.write(frame(["m1"], n=2, value=10.0, received_at=second))
    assert res == WriteResult(replaced=2)
    latest = store.read(["m1"], T0, T0 + timedelta(days=1))
    assert latest["value"].to_list() == [10.0, 11.0, 3.0, 4.0]
    assert latest["received_at"].to_list()[:3] == [second, second, first]
    history = store.read(["m1"], T0, T0 + timedelta(minutes=15), all_versions=True)
    assert sorted(history["value"].to_list()) == [1.0, 10.0]
    # Compaction keeps the history and the winner.
    store.compact(full=True)
    assert store.read(["m1"], T0, T0 + timedelta(days=1)).equals(latest)
    assert store.read(["m1"], T0, T0 + timedelta(minutes=15), all_versions=True).height == 2


def test_within_one_batch_the_last_value_wins(tmp_path):
    store = ReadingsStore(tmp_path)
    df = pl.concat(
        [
            frame(["m1"], n=1, value=1.0),
            frame(["m1"], n=1, value=1.0),
            frame(["m1"], n=1, value=2.0),
        ]
    )
    res = store.write(df)
    assert (res.accepted, res.duplicate, res.replaced) == (1, 1, 1)
    assert store.read(["m1"], T0, T0 + timedelta(days=1))["value"].to_list() == [2.0]


def test_units_are_separate_readings(tmp_path):
    store = ReadingsStore(tmp_path)
    store.write(frame(["m1"], n=1, unit="kWh"))
    res = store.write(frame(["m1"], n=1, unit="V", value=220.0))
    assert res.accepted == 1
    assert sorted(store.read(["m1"], T0, T0 + timedelta(hours=1))["unit"]) == ["V", "kWh"]


def test_range_is_half_open_and_filters_meters(tmp_path):
    store = ReadingsStore(tmp_path)
    store.write(frame(["a", "b", "c"], n=96))
    out = store.read(["a", "c"], T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    assert out.height == 8
    assert set(out["meter"]) == {"a", "c"}
    assert out["ts"].min() == T0 + timedelta(hours=1)
    assert out["ts"].max() == T0 + timedelta(hours=1, minutes=45)
    assert store.read(["zzz"], T0, T0 + timedelta(days=1)).height == 0
    assert ReadingsStore(tmp_path / "empty").read(None, T0, T0 + timedelta(days=1)).height == 0


def test_bad_frames_are_refused_with_a_reason(tmp_path):
    store = ReadingsStore(tmp_path)
    naive = frame(["m1"]).with_columns(pl.col("ts").dt.replace_time_zone(None))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.write(naive)
    with pytest.raises(ValueError, match="missing column"):
        store.write(frame(["m1"]).drop("unit"))
    with pytest.raises(ValueError, match="null"):
        store.write(frame(["m1"]).with_columns(value=pl.lit(None, dtype=pl.Float64)))
    with pytest.raises(ValueError, match="unknown column"):
        store.write(frame(["m1"]).with_columns(x=pl.lit(1)))
    assert store.days() == []


def test_other_zones_are_converted_to_utc(tmp_path):
    store = ReadingsStore(tmp_path)
    local = frame(["m1"], n=1).with_columns(pl.col("ts").dt.convert_time_zone("Asia/Shanghai"))
    store.write(local)
    assert store.read(["m1"], T0, T0 + timedelta(hours=1))["ts"].to_list() == [T0]


def test_many_small_writes_are_compacted_and_nothing_is_lost(tmp_path):
    store = ReadingsStore(tmp_path)
    store.auto_compact_files = 5
    for i in range(12):
        store.write(frame([f"m{i}"], n=96))
    files = list((tmp_path / "day=2024-03-01").glob("*.parquet"))
    assert len(files) < 5
    assert store.read(None, T0, T0 + timedelta(days=1)).height == 12 * 96
    assert store.compact(full=True) >= 1
    assert len(list((tmp_path / "day=2024-03-01").glob("*.parquet"))) == 1
    assert store.read(None, T0, T0 + timedelta(days=1)).height == 12 * 96


def _writer(root, i):
    store = ReadingsStore(root)
    store.auto_compact_files = 4
    for j in range(6):
        store.write(frame([f"p{i}-{j}"], n=24))
        store.write(frame([f"shared-{j}"], n=24))  # the same readings from every process


def test_several_processes_write_at_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(tmp_path, i)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    out = ReadingsStore(tmp_path).read(None, T0, T0 + timedelta(days=1))
    assert out.height == 3 * 6 * 24 + 6 * 24
    versions = ReadingsStore(tmp_path).read(None, T0, T0 + timedelta(days=1), all_versions=True)
    assert versions.height == out.height  # the lock made every repeat a duplicate


def test_no_half_written_file_is_ever_visible(tmp_path):
    store = ReadingsStore(tmp_path)
    (tmp_path / "day=2024-03-01").mkdir(parents=True)
    (tmp_path / "day=2024-03-01" / ".part-crashed.tmp").write_bytes(b"PAR1 half")
    store.write(frame(["m1"]))
    assert store.read(None, T0, T0 + timedelta(days=1)).height == 4


def test_events_payments_balances_stores(tmp_path):
    stores = open_stores(tmp_path)
    ev = pl.DataFrame(
        {
            "meter": ["m1", "m1"],
            "ts": [T0, T0 + timedelta(hours=2)],
            "event": ["power_off", "power_on"],
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    assert stores.events.write(ev).accepted == 2
    assert stores.events.write(ev).duplicate == 2
    out = stores.events.read(["m1"], T0, T0 + timedelta(days=1))
    assert out["event"].to_list() == ["power_off", "power_on"]
    assert out["detail"].to_list() == ["", ""]
    pay = pa.table(
        {
            "account": ["a1"],
            "ts": pa.array([T0], pa.timestamp("us", "UTC")),
            "amount": [100.0],
            "channel": ["wechat"],
        }
    )
    assert stores.payments.write(pay).accepted == 1
    assert stores.payments.read(["a1"])["amount"].to_list() == [100.0]
    bal = pl.DataFrame(
        {"meter": ["m1"], "ts": [T0], "balance": [12.5]},
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    stores.balances.write(bal)
    assert stores.balances.write(bal.with_columns(balance=pl.lit(3.0))).replaced == 1
    assert stores.balances.read()["balance"].to_list() == [3.0]
    assert isinstance(stores.events, EventsStore)
