"""The meter-data contract (lianxin.meterdata) and the entry points that go through it: one zone,
one local-time rule, one unit table, one event vocabulary, one atomic write."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lianxin import meterdata
from lianxin.atomic import atomic_write
from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.detectors import DETECTORS, _check_order, inactivity, power


def test_the_zone_is_lianxin_time_zone_read_in_one_place(monkeypatch):
    monkeypatch.delenv("LIANXIN_TIME_ZONE", raising=False)
    assert meterdata.deployment_zone() == "Asia/Shanghai"
    assert EngineConfig().tz == "Asia/Shanghai"
    monkeypatch.setenv("LIANXIN_TIME_ZONE", "Europe/London")
    assert meterdata.deployment_zone() == "Europe/London"
    assert EngineConfig().tz == "Europe/London"
    monkeypatch.setenv("LIANXIN_TIME_ZONE", "Mars/Olympus")
    with pytest.raises(meterdata.ZoneError, match="LIANXIN_TIME_ZONE='Mars/Olympus'"):
        meterdata.deployment_zone()


def test_to_utc_has_one_dst_policy():
    local = pl.Series(
        [
            datetime(2024, 3, 31, 0, 30),  # GMT
            datetime(2024, 3, 31, 1, 30),  # skipped in spring: null, refused by every caller
            datetime(2024, 10, 27, 1, 30),  # repeated in autumn: the earlier instant
        ]
    )
    out = meterdata.to_utc(local, "Europe/London").to_list()
    assert out == [
        datetime(2024, 3, 31, 0, 30, tzinfo=UTC),
        None,
        datetime(2024, 10, 27, 0, 30, tzinfo=UTC),
    ]
    later = meterdata.to_utc(local[2:], "Europe/London", ambiguous=pl.Series(["latest"]))
    assert later.to_list() == [datetime(2024, 10, 27, 1, 30, tzinfo=UTC)]
    # A zone without DST takes plain arithmetic, to the same instants.
    assert meterdata.to_utc(local[:1], "Asia/Shanghai").to_list() == [
        datetime(2024, 3, 30, 16, 30, tzinfo=UTC)
    ]


def test_one_limit_per_unit_and_interval():
    assert meterdata.limit("kWh", timedelta(minutes=15)) == 25.0  # a 96-point curve's point
    assert meterdata.limit("kWh") == 100.0  # interval not known: the longest, an hour
    assert meterdata.limit("Wh", timedelta(minutes=30)) == 50_000.0
    assert meterdata.limit("m3", timedelta(minutes=30)) == 5.0
    assert meterdata.limit("kW", timedelta(minutes=15)) == 100.0  # power does not scale
    assert meterdata.limit("furlongs") == float("inf")  # refused by name by the caller
    store = pl.DataFrame(
        {"meter": ["a"] * 4, "value": [1.0, 500.0, 2.0, 230.0], "unit": ["kWh", "Wh", "m3", "V"]}
    )
    q = meterdata.interval_quantities(store)
    assert q["quantity"].to_list() == [1.0, 0.5, 2.0]  # kWh, kWh, m³; volts are no quantity


def test_engine_event_codes_are_named_and_in_the_engines_order():
    assert meterdata.ENGINE_EVENTS[meterdata.EngineEvent.COMM_LOSS] == meterdata.COMM_LOSS
    assert [meterdata.ENGINE_EVENT_CODE[e] for e in meterdata.ENGINE_EVENTS] == list(range(8))
    stored = pl.DataFrame(
        {
            "event": ["voltage_out_of_range", "voltage_out_of_range", "comm_restored", "tamper"],
            "detail": ["258V", "180V", "", ""],
        }
    )
    names = stored.select(event=meterdata.engine_event(pl.col("event"), pl.col("detail")))
    assert names["event"].to_list() == ["voltage_high", "voltage_low", None, "tamper"]
    for src in Path(meterdata.__file__).parent.joinpath("engine", "detectors").glob("*.py"):
        assert "ev_codes ==" not in src.read_text().replace("ev_codes == EngineEvent.", ""), src


def test_detectors_name_what_they_read_of_each_other():
    assert "payment" in power.AFTER
    assert set(inactivity.AFTER) == {"data_gap", "payment", "power"}
    _check_order(DETECTORS)
    with pytest.raises(RuntimeError, match="detector power must run after payment"):
        _check_order([d for d in DETECTORS if d.__name__.endswith("power")] + DETECTORS)


def _engine(tz="Europe/London"):
    eng = Engine(EngineConfig(tz=tz))
    eng.register(pl.DataFrame({"household_id": ["h1"], "interval_s": [1800]}))
    return eng


def test_engine_step_reads_naive_times_as_local_like_replay():
    naive, aware = _engine(), _engine()
    july = datetime(2024, 7, 1, 8, 0)  # BST: 07:00 UTC
    naive.step(pl.DataFrame({"household_id": ["h1"], "ts": [july], "kwh": [0.2]}))
    aware.step(
        pl.DataFrame(
            {"household_id": ["h1"], "ts": [july.replace(tzinfo=UTC) - timedelta(hours=1)]},
        ).with_columns(kwh=pl.lit(0.2))
    )
    assert naive.now == aware.now == int(datetime(2024, 7, 1, 7, 30, tzinfo=UTC).timestamp())


@pytest.mark.parametrize("bad", [-0.1, float("nan"), None])
def test_engine_step_checks_its_readings(bad):
    eng = _engine()
    frame = pl.DataFrame(
        {"household_id": ["h1", "h1"], "ts": [0, 1800], "kwh": [0.1, bad]},
        schema_overrides={"kwh": pl.Float64},
    )
    with pytest.raises(ValueError, match="readings row 2: kwh"):
        eng.step(frame)
    assert eng.now is None  # nothing was judged


def test_a_kwh_column_holds_kwh_only():
    eng = _engine()
    water = pl.DataFrame({"household_id": ["h1"], "ts": [0], "kwh": [0.1], "meter_kind": ["water"]})
    with pytest.raises(ValueError, match="name the column 'quantity'"):
        eng.step(water)
    eng.step(water.rename({"kwh": "quantity"}))
    assert eng.index["h1#water"] >= 0


def test_replay_tz_follows_lianxin_time_zone(tmp_path):
    readings = tmp_path / "r.csv"
    rows = [f"h1,2024-07-01 {h:02d}:{m:02d},0.1" for h in range(2) for m in (0, 30)]
    readings.write_text("household_id,ts,kwh\n" + "\n".join(rows) + "\n")
    out = tmp_path / "f.jsonl"
    env = {"LIANXIN_TIME_ZONE": "Mars/Olympus", "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "lianxin", "replay", "--readings", str(readings)]
    done = subprocess.run(
        [*cmd, "--out", str(out)], env=env, capture_output=True, text=True, check=False
    )
    # The default zone is LIANXIN_TIME_ZONE's: a wrong one is named, not silently replaced.
    assert done.returncode == 1
    assert "LIANXIN_TIME_ZONE='Mars/Olympus'" in done.stderr
    assert "Traceback" not in done.stderr


def test_atomic_write_leaves_the_old_file_whole_on_failure(tmp_path):
    path = tmp_path / "state.bin"
    with atomic_write(path) as fh:
        fh.write(b"old")
    with pytest.raises(RuntimeError), atomic_write(path) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.bin"]  # no temporary left
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write("新")
    assert path.read_text(encoding="utf-8") == "新"


def test_quantity_check_is_vectorised():
    meterdata.check_engine_quantities(np.array([0.0, 1.5], np.float64))
    with pytest.raises(ValueError, match="row 2"):
        meterdata.check_engine_quantities(np.array([0.0, np.inf]))
