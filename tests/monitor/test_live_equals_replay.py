"""Live equals replay: the committed real sample (24 London homes, ten weeks, half-hourly) fed to
the store as it would arrive and judged by `Monitor.step` gives exactly the findings of a
`replay()` of the same data; and replay is causal: the findings of the data up to any time T are
the full run's findings detected by T (over random T, bounded)."""

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lianxin.care.models import Household, Meter
from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.replay import replay
from lianxin.monitor import Monitor
from lianxin.store import open_stores

SAMPLE = Path(__file__).parents[1] / "data" / "lcl_sample.parquet"
TZ = "Europe/London"  # the sample's homes; its clock is UTC (winter)
STEP = timedelta(hours=6)


def sample() -> pl.DataFrame:
    return pl.read_parquet(SAMPLE).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))


def as_dicts(findings) -> list[dict]:
    return [f.to_dict() for f in findings]


@pytest.mark.django_db
def test_monitor_steps_on_the_store_find_what_replay_finds(tmp_path):
    lcl = sample()
    want = as_dicts(replay(lcl, engine=Engine(EngineConfig(tz=TZ))))
    homes = sorted(lcl["household_id"].unique())
    for code in homes:
        home = Household.objects.create(code=code, address=code)
        Meter.objects.create(
            number=f"E{code}", account_number=code, household=home, interval_minutes=30
        )
    stores = open_stores(tmp_path)
    start = lcl["ts"].min()
    end = lcl["ts"].max() + timedelta(minutes=30)
    monitor = Monitor(tmp_path, TZ, history_days=1)
    got = []
    t = start
    while t < end:
        nxt = min(t + STEP, end)
        feed = lcl.filter((pl.col("ts") >= t) & (pl.col("ts") < nxt))
        stores.readings.write(
            feed.select(
                meter=pl.lit("E") + pl.col("household_id"), ts="ts", value="kwh", unit=pl.lit("kWh")
            )
        )
        # A reading's interval ends 30 minutes after its ts: judged once it has ended.
        got += monitor.step(nxt, raise_alerts=False).findings
        t = nxt
    monitor.close()
    got = as_dicts(got)
    assert len(got) == len(want)
    assert got == want


@pytest.fixture(scope="module")
def full_run():
    lcl = sample()
    return lcl, as_dicts(replay(lcl, engine=Engine(EngineConfig(tz=TZ))))


@pytest.mark.once
@settings(max_examples=6, deadline=None, derandomize=True, database=None)
@given(cut=st.integers(min_value=1, max_value=69 * 48))
def test_replay_is_causal_at_any_cut(full_run, cut):
    lcl, full = full_run
    t = lcl["ts"].min() + timedelta(minutes=30 * cut)  # data up to T: readings ending by T
    upto = lcl.filter(pl.col("ts") + timedelta(minutes=30) <= t)
    got = as_dicts(replay(upto, engine=Engine(EngineConfig(tz=TZ))))
    want = [f for f in full if datetime.fromisoformat(f["detected_at"]) <= t]
    assert got == want
