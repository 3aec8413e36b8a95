"""A replay on two cores (inactivity and high_load in a second process) finds exactly what the
one-process replay finds, in the same order, and leaves the engine in the same state."""

import json
import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lianxin.engine import parallel
from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.detectors import inactivity
from lianxin.engine.replay import replay
from tests.engine.curves import at, edit, home, raised
from tests.engine.test_equivalence import GOLDEN, GOLDEN_STATE, TZ, state_digest
from tests.engine.test_golden_scenario import GOLDEN as TOWN_GOLDEN
from tests.engine.test_golden_scenario import scenario

SAMPLE = Path(__file__).parents[1] / "data" / "lcl_sample.parquet"

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this platform"
)


def golden(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def as_written(findings) -> list[dict]:
    return [json.loads(json.dumps(f.to_dict(), ensure_ascii=False)) for f in findings]


@pytest.fixture(scope="module")
def lcl():
    return pl.read_parquet(SAMPLE).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))


def test_the_real_sample_on_two_cores_gives_the_golden_findings_and_state(lcl):
    eng = Engine(EngineConfig(tz=TZ))
    got = as_written(replay(lcl, engine=eng, workers=2))
    assert got == golden(GOLDEN)
    assert {f["kind"] for f in got} >= {"inactivity", "high_load"}
    # The fields the other process kept came back: the engine is the one-process one.
    assert state_digest(eng) == json.loads(GOLDEN_STATE.read_text())
    assert eng.detectors is parallel.DETECTORS


def test_the_synthetic_town_on_two_cores_gives_its_golden_findings():
    assert scenario(workers=2) == golden(TOWN_GOLDEN)


def test_small_batches_settings_and_water_meters_give_the_one_process_findings(monkeypatch):
    # Batches of 7 intervals in 2 shared slots: the replay waits for the other process to
    # free a slot, many times over.
    monkeypatch.setattr(parallel, "BATCH", 7)
    monkeypatch.setattr(parallel, "SLOTS", 2)
    town = pl.concat([home(f"h{i}", 30, seed=i) for i in range(6)])
    town = edit(town, "h1", at(20, 9), at(21, 12), pl.lit(0.07))  # a quiet day and night
    town = edit(town, "h2", at(22, 8), at(22, 20), pl.lit(0.07))
    town = edit(town, "h3", at(24, 1), at(24, 6), pl.col("kwh") + 1.5)  # a heater left on
    water = home("h4", 30, seed=9).with_columns(meter_kind=pl.lit("water"), kwh=pl.col("kwh") / 10)
    readings = pl.concat([town.with_columns(meter_kind=pl.lit("electricity")), water]).rename(
        {"kwh": "quantity"}
    )
    settings = pl.DataFrame(
        {
            "household_id": ["h0", "h5"],
            "sensitivity": ["high", "low"],
            "quiet_start": ["13:00", None],
            "quiet_end": ["15:00", None],
            "away_from": [None, "2026-01-28 00:00"],
            "away_to": [None, "2026-01-30 00:00"],
        }
    )
    one = replay(readings, settings=settings, tz="Asia/Shanghai")
    two = replay(readings, settings=settings, tz="Asia/Shanghai", workers=2)
    assert as_written(two) == as_written(one)
    assert raised(one, "inactivity") and raised(one, "high_load")


def test_a_restored_engine_continues_on_two_cores_exactly(lcl):
    full = as_written(replay(lcl, engine=Engine(EngineConfig(tz=TZ))))
    split = datetime(2013, 2, 10, 13, tzinfo=UTC)
    first = Engine(EngineConfig(tz=TZ))
    a = replay(lcl.filter(pl.col("ts") < split), engine=first, workers=2)
    again = Engine.restore(first.snapshot())
    b = replay(lcl.filter(pl.col("ts") >= split), engine=again, workers=2)
    assert as_written(a + b) == full


def test_a_failure_in_the_other_process_is_raised_not_waited_for(lcl, monkeypatch):
    def broken(eng, t):
        raise ValueError("broken detector")

    monkeypatch.setattr(inactivity, "tick", broken)  # the forked process runs this one
    eng = Engine(EngineConfig(tz=TZ))
    with pytest.raises(RuntimeError, match="broken detector"):
        replay(lcl.head(20_000), engine=eng, workers=2)
    assert eng.detectors is parallel.DETECTORS  # the engine runs its own detectors again
    assert np.all(eng.a.in_open == 0)
