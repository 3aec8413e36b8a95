"""The store's fast write path keeps the store's rules.

An import writes its registers and the energy derived from them in one write (one file per UTC
day, counted per unit); a batch that comes in file order is not sorted again; a stored file is
read back only when its key ranges could hold the batch's keys. Checked against a plain model:
a dict of the last value sent per key, with the counts a write must report.
"""

from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow.compute as pc
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lianxin.store import ReadingsStore, WriteResult

T0 = datetime(2024, 3, 1, 22, 0, tzinfo=UTC)  # a batch of 4 hours spans two UTC days


def import_batch(meters, hours=4, base=100.0):
    """Registers and their energies as an import writes them: per unit, meter then time."""
    n = hours * 4
    ts = [T0 + timedelta(minutes=15 * i) for i in range(n)]
    regs = pl.DataFrame(
        {
            "meter": [m for m in meters for _ in ts],
            "ts": ts * len(meters),
            "value": [base + i for _ in meters for i in range(n)],
            "unit": "kWh reg",
        }
    )
    energy = regs.filter(pl.col("ts") > T0).with_columns(
        ts=pl.col("ts") - timedelta(minutes=15), value=pl.lit(1.0), unit=pl.lit("kWh")
    )
    return pl.concat([regs, energy])


def test_registers_and_energy_go_in_one_file_per_day_counted_per_unit(tmp_path):
    store = ReadingsStore(tmp_path)
    batch = import_batch(["m2", "m1"])  # meters out of order: laid out by a sort
    got = store.write_counted(batch, "unit")
    assert got == {"kWh reg": WriteResult(accepted=32), "kWh": WriteResult(accepted=30)}
    for day in ("2024-03-01", "2024-03-02"):
        [path] = (tmp_path / f"day={day}").glob("*.parquet")
        stored = pl.read_parquet(path)
        # Per unit (one run each), then meter, then time: what row-group statistics skip by.
        assert stored["unit"].rle_id().max() + 1 == stored["unit"].n_unique() == 2
        for _unit, run in stored.group_by("unit", maintain_order=True):
            assert run.select("meter", "ts").equals(run.select("meter", "ts").sort("meter", "ts"))
    # The same again: all duplicates, per unit; one energy corrected: replaced, in its unit.
    again = store.write_counted(batch, "unit")
    assert again == {"kWh reg": WriteResult(duplicate=32), "kWh": WriteResult(duplicate=30)}
    fixed = batch.with_columns(
        value=pl.when((pl.col("unit") == "kWh") & (pl.col("ts") == T0)).then(2.0).otherwise("value")
    )
    got = store.write_counted(fixed, "unit")
    assert got["kWh"] == WriteResult(replaced=2, duplicate=28)
    assert got["kWh reg"] == WriteResult(duplicate=32)
    assert store.write(fixed) == WriteResult(duplicate=62)
    latest = store.read(["m1"], T0, T0 + timedelta(minutes=15)).filter(pl.col("unit") == "kWh")
    assert latest["value"].to_list() == [2.0]


def test_a_write_reads_back_only_files_that_can_hold_its_keys(tmp_path, monkeypatch):
    store = ReadingsStore(tmp_path)
    read_back: list[list] = []
    real_collect = store._collect

    def collect(files, build):  # recorded on the way to the real read
        read_back.append(sorted(f.name for f in files))
        return real_collect(files, build)

    monkeypatch.setattr(store, "_collect", collect)
    batch = import_batch(["m1", "m2"])
    store.write(batch.filter(pl.col("unit") == "kWh reg"))
    # The energy of the same meters and times: a file of registers cannot hold it.
    assert store.write(batch.filter(pl.col("unit") == "kWh")) == WriteResult(accepted=30)
    # Other meters, past the stored ones: nothing read either.
    assert store.write(import_batch(["m3"])).accepted == 31
    assert read_back == []
    # A correction of stored energy reads the files that may hold it, and finds it.
    fixed = batch.filter(pl.col("unit") == "kWh").with_columns(value=pl.lit(3.0))
    assert store.write(fixed) == WriteResult(replaced=30)
    assert read_back and all(len(files) == 1 for files in read_back)


def test_ranges_come_from_the_footer_statistics_of_every_key_column(tmp_path):
    store = ReadingsStore(tmp_path)
    store.write(import_batch(["m1", "m9"]))
    [path] = (tmp_path / "day=2024-03-01").glob("*.parquet")
    lo, hi, t_lo, t_hi, columns = store._ranges(path)
    assert (lo, hi) == ("m1", "m9") and columns["unit"] == ("kWh", "kWh reg")
    assert (t_lo, t_hi) == (T0, datetime(2024, 3, 1, 23, 45, tzinfo=UTC))
    ts = pq.read_table(path)["ts"]
    assert (t_lo, t_hi) == tuple(v.as_py() for v in (pc.min(ts), pc.max(ts)))


rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.integers(2, 5),  # quarter-hours from 23:00: two UTC days
        st.sampled_from(["kWh", "kWh reg"]),
        st.sampled_from([1.0, 2.0]),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(writes=st.lists(st.tuples(rows, st.booleans()), min_size=1, max_size=4))
def test_any_order_any_repeats_match_a_plain_model(tmp_path_factory, writes):
    store = ReadingsStore(tmp_path_factory.mktemp("store"))
    model: dict = {}
    start = datetime(2024, 3, 1, 23, 0, tzinfo=UTC)
    for batch, in_order in writes:
        if in_order:  # as an import sends it: per unit, meter then time (repeats possible)
            batch = sorted(batch, key=lambda r: (r[2], r[0], r[1]))
        want: dict = {}
        latest = {}
        for meter, k, unit, value in batch:  # within a batch the last one sent wins
            key = (meter, k, unit)
            if key in latest:
                counts = want.setdefault(unit, WriteResult())
                if latest[key] == value:
                    counts.duplicate += 1
                else:
                    counts.replaced += 1
            latest[key] = value
        for (meter, k, unit), value in latest.items():
            counts = want.setdefault(unit, WriteResult())
            if (meter, k, unit) not in model:
                counts.accepted += 1
            elif model[(meter, k, unit)] == value:
                counts.duplicate += 1
            else:
                counts.replaced += 1
            model[(meter, k, unit)] = value
        frame = pl.DataFrame(
            {
                "meter": [r[0] for r in batch],
                "ts": [start + timedelta(minutes=15 * r[1]) for r in batch],
                "unit": [r[2] for r in batch],
                "value": [r[3] for r in batch],
            }
        )
        assert store.write_counted(frame, "unit") == want
    got = store.read()
    assert got.height == len(model)
    for meter, ts, value, unit, _received in got.iter_rows():
        k = int((ts - start).total_seconds() // 900)
        assert model[(meter, k, unit)] == value
