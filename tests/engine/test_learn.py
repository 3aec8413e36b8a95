"""Engine.learn (the bulk warm-up) leaves the engine with exactly what feeding the same history
through Engine.tick (replay) learns, and the findings that follow are those of a tick warm-up.

State is compared field by field: every array but learn.STARTS_CLEAR (finding state, which
learning leaves clear) and learn.PREPARED (the day end's figures, prepared for the day in
progress only) must hold the same values, NaN where NaN; sums are taken in the tick's order, so
no tolerance is needed.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lianxin.engine import core, routine
from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.learn import PREPARED, STARTS_CLEAR
from lianxin.engine.replay import replay
from tests.engine.curves import drop, edit, routine_day

SAMPLE = Path(__file__).parents[1] / "data" / "lcl_sample.parquet"


def assert_rows_last(eng: Engine) -> None:
    """The fields kept rows last in memory still are (a copy in the other order gives the same
    results, only slowly: no other test would notice)."""
    for name in routine.ROWS_LAST:
        assert np.moveaxis(eng.a[name], 0, -1).flags.c_contiguous, name


def assert_learned_the_same(tick: Engine, bulk: Engine) -> None:
    assert_rows_last(tick)
    assert_rows_last(bulk)
    assert bulk.ids == tick.ids
    assert (bulk.now, bulk.hour_end) == (tick.now, tick.hour_end)
    fresh = Engine(tick.cfg)
    # The day end's figures: those of the day in progress as tick prepared them by now; tick's
    # leftovers from the days before are not learned.
    day = routine.local_day(datetime.fromtimestamp(tick.hour_end - 1, tick.tz))
    today = tick.a.prep_day == day
    np.testing.assert_array_equal(bulk.a.prep_day, np.where(today, day, -1), err_msg="prep_day")
    for name, values in tick.a.items():
        got = bulk.a[name]
        if name in STARTS_CLEAR:
            np.testing.assert_array_equal(got, fresh._alloc(name, bulk.n), err_msg=name)
        elif name in PREPARED:
            np.testing.assert_array_equal(got[today], values[today], err_msg=name)
            np.testing.assert_array_equal(got[~today], fresh._alloc(name, bulk.n)[~today], name)
        else:
            assert got.dtype == values.dtype, name
            np.testing.assert_array_equal(got, values, err_msg=name)
    np.testing.assert_array_equal(bulk.q_sorted, tick.q_sorted, err_msg="q_sorted")
    for name, values in tick.pop.items():
        np.testing.assert_array_equal(np.asarray(bulk.pop[name]), np.asarray(values), name)


def engines(tz: str, topology: pl.DataFrame | None = None) -> tuple[Engine, Engine]:
    """A tick engine and a bulk engine with the same rows registered up front."""
    pair = Engine(EngineConfig(tz=tz)), Engine(EngineConfig(tz=tz))
    if topology is not None:
        for eng in pair:
            eng.register(topology)
    return pair


# ---- the real sample -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lcl():
    return pl.read_parquet(SAMPLE).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))


@pytest.mark.parametrize("days", [None, 45.3])  # all of it; or ending in a local hour's middle
def test_real_sample_learns_what_tick_learns(lcl, days):
    if days is not None:
        lcl = lcl.filter(pl.col("ts") < lcl["ts"].min() + timedelta(days=days))
    tick, bulk = engines("Europe/London")
    replay(lcl, engine=tick)
    assert bulk.learn_readings(lcl) == lcl.height
    assert_learned_the_same(tick, bulk)
    assert (bulk.a.days_seen > 40).all()


# ---- hand-made curves: gaps, zeros, outages, DST, a first partial day ----------------------


def curves(start: datetime, days: int, minutes: int, seed: int = 0) -> pl.DataFrame:
    """Homes with a plain routine (tests/engine/curves.py) on a UTC grid of `minutes`, each
    with its own trouble; ts are UTC instants, so DST days are simply 23 or 25 local hours."""
    rng = np.random.default_rng(seed)
    half = np.concatenate([routine_day(rng) for _ in range(days)])  # kWh per half hour
    if minutes <= 30:  # each half hour's energy spread evenly over its intervals
        kwh = np.repeat(half * (minutes / 30), 30 // minutes)
    else:
        kwh = half.reshape(-1, minutes // 30).sum(axis=1)
    step = timedelta(minutes=minutes)
    n = len(kwh)
    ts = [start + i * step for i in range(n)]
    at = {h: int(h * 60 / minutes) for h in range(0, days * 24 + 1)}  # hour -> interval index

    def hours(h0, h1):
        return slice(at[h0], at[h1])

    homes = {}
    homes["plain"] = kwh.copy()
    late = kwh.copy()  # first reading at 13:30 on day 2: a first partial day
    late[: at[37] + int(30 / minutes)] = np.nan
    homes["late"] = late
    gaps = kwh.copy()
    gaps[hours(5 * 24 + 9, 5 * 24 + 14)] = np.nan  # 5 h without data: a data gap
    gaps[hours(9 * 24 + 10, 9 * 24 + 11)] = np.nan  # 1 h: too short for a gap
    gaps[hours(12 * 24 + 21, 13 * 24 + 3)] = np.nan  # across midnight
    gaps[hours(15 * 24, 17 * 24)] = np.nan  # two whole days
    homes["gaps"] = gaps
    habit = kwh.copy()  # the meter reads zero every night: zero is this home's normal
    for d in range(days):
        habit[hours(d * 24 + 2, d * 24 + 3)] = 0
    homes["zero_habit"] = habit
    outage = kwh.copy()  # supply lost twice, and a zero run ending in a gap
    outage[hours(8 * 24 + 18, 8 * 24 + 21)] = 0
    outage[hours(20 * 24 + 4, 20 * 24 + 5)] = 0
    outage[hours(26 * 24 + 1, 26 * 24 + 3)] = 0
    outage[hours(26 * 24 + 3, 26 * 24 + 7)] = np.nan
    homes["outage"] = outage
    long_dark = kwh.copy()  # dark for days (one run over several days), later an evening
    long_dark[hours(5 * 24 + 10, 9 * 24 + 16)] = 0
    long_dark[hours(15 * 24 + 19, 16 * 24 + 1)] = 0
    homes["long_dark"] = long_dark
    gap_zero = kwh.copy()  # zeros, the meter silent for a day, zeros again when it is back
    gap_zero[hours(12 * 24 + 2, 12 * 24 + 3)] = 0
    gap_zero[hours(12 * 24 + 3, 13 * 24 + 11)] = np.nan
    gap_zero[hours(13 * 24 + 11, 13 * 24 + 12)] = 0
    homes["gap_zero"] = gap_zero
    stopped = kwh.copy()  # stops reporting for good: its gap is open at the end
    stopped[hours(days * 24 - 30, days * 24)] = np.nan
    homes["stopped"] = stopped
    # Four homes of one transformer area go dark together (a grid outage), two of another
    # together (not enough for an outage: no_power waits one interval for its neighbours).
    for i in range(4):
        area = kwh * (0.8 + 0.1 * i)
        # (a3's supply comes back an hour after the area's: its run was still the outage's)
        area[hours(11 * 24 + 19, 11 * 24 + 22 + (i == 3))] = 0
        homes[f"area_a{i}"] = area
    for i in range(2):
        area = kwh * (0.9 + 0.2 * i)
        area[hours(18 * 24 + 7, 18 * 24 + 9)] = 0
        homes[f"area_b{i}"] = area
    frames = [
        pl.DataFrame({"household_id": h, "ts": ts, "kwh": v}).filter(pl.col("kwh").is_not_nan())
        for h, v in homes.items()
    ]
    return pl.concat(frames).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))


TOPOLOGY = pl.DataFrame(
    {
        "household_id": ["area_a0", "area_a1", "area_a2", "area_a3", "area_b0", "area_b1", "idle"],
        "transformer_area": ["A", "A", "A", "A", "B", "B", "B"],
    }
)


@pytest.mark.parametrize(
    "tz, start, minutes",
    [
        ("Europe/London", datetime(2026, 3, 8, 11, 0, tzinfo=UTC), 30),  # clocks go forward
        ("Europe/London", datetime(2026, 10, 4, 0, 0, tzinfo=UTC), 15),  # clocks go back
        ("Europe/London", datetime(2026, 10, 4, 0, 0, tzinfo=UTC), 60),
        ("Asia/Shanghai", datetime(2026, 1, 4, 16, 0, tzinfo=UTC), 30),  # local midnight
    ],
)
def test_hand_made_curves_learn_what_tick_learns(tz, start, minutes):
    df = curves(start, 33, minutes)
    # "idle" is registered but never reports
    tick, bulk = engines(tz, TOPOLOGY.with_columns(interval_s=pl.lit(minutes * 60)))
    findings = replay(df, engine=tick)
    bulk.learn_readings(df)
    assert_learned_the_same(tick, bulk)
    # The troubles did happen in the tick warm-up (so the rules learning follows were used).
    kinds = {(f.kind, f.household_id) for f in findings if f.event == "raised"}
    assert ("data_gap", "gaps") in kinds and ("no_power", "outage") in kinds
    assert any(f.kind == "grid_outage" for f in findings)
    assert tick.a["hour_anom"].any() or tick.a["gap_open"].any()


@pytest.mark.parametrize(
    "minutes, T, offset_min",
    [(30, 48 * 30, 0), (30, 7, 30), (15, 41, 45), (60, 24 * 12, 0), (15, 2, 15)],
)
def test_matrix_entry_with_rows_of_the_engine(minutes, T, offset_min):
    """Engine.learn on a kW matrix for some of the engine's rows (the others stay silent),
    from a block of any length, starting anywhere in an hour."""
    rng = np.random.default_rng(3)
    iv = minutes * 60
    start = int(datetime(2026, 2, 1, 16, offset_min, tzinfo=UTC).timestamp())
    kw = (rng.random((4, T)) * 0.8 + 0.05).astype(np.float32)
    kw[rng.random((4, T)) < 0.01] = np.nan
    kw[1, T // 3 : T // 3 + 20] = np.nan
    kw[2, T // 2 : T // 2 + 4] = 0
    kw[3] = np.nan  # in the block, but never reports
    homes = pl.DataFrame({"household_id": ["a", "b", "c", "d", "e", "f"], "interval_s": iv})
    tick, bulk = engines("Asia/Shanghai", homes)
    rows = np.array([4, 0, 2, 5])  # b and d are not in the block
    for i in range(T):
        v = np.full(6, np.nan, np.float32)
        v[rows] = kw[:, i]
        tick.tick(start + (i + 1) * iv, ~np.isnan(v), v)
    bulk.learn(kw, start, rows)
    assert_learned_the_same(tick, bulk)


def test_readings_up_to_a_later_clock_learn_what_step_learns():
    """learn_readings(..., end) runs the clock past the last reading, as Engine.step(now=)."""
    df = curves(datetime(2026, 1, 4, 16, 0, tzinfo=UTC), 30, 15)
    end = int(datetime(2026, 2, 3, 21, 40, tzinfo=UTC).timestamp())  # 5 h 40 min after
    homes = pl.DataFrame({"household_id": df["household_id"].unique(), "interval_s": 900})
    tick, bulk = engines("Asia/Shanghai", homes)
    tick.step(df, end - end % 900)
    bulk.learn_readings(df, end=end)
    assert_learned_the_same(tick, bulk)


# ---- what follows the warm-up ---------------------------------------------------------------


@pytest.mark.parametrize("prep_rows", [None, 2])
def test_findings_after_a_learned_warm_up_are_those_after_a_tick_warm_up(monkeypatch, prep_rows):
    if prep_rows:
        # The day end's figures prepared a share of the homes an hour (8 homes, 4 shares):
        # the warm-up ends at 03:00, with the shares of two hours prepared, as tick has them.
        monkeypatch.setattr(core, "PREP_ROWS", prep_rows)
    rng = np.random.default_rng(5)
    start = datetime(2026, 5, 3, 23, 0, tzinfo=UTC)  # local midnight in London (BST)
    days = 40
    step = timedelta(minutes=30)
    ts = [start + i * step for i in range(days * 48)]
    frames = []
    for h in range(8):
        kwh = np.concatenate([routine_day(rng) for _ in range(days)]) * (0.7 + 0.1 * h)
        frames.append(pl.DataFrame({"household_id": f"h{h}", "ts": ts, "kwh": kwh}))
    df = pl.concat(frames).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    cut = start + timedelta(days=33, hours=3)
    warm, later = df.filter(pl.col("ts") < cut), df.filter(pl.col("ts") >= cut)

    def hours(h):
        return cut + timedelta(hours=h)

    later = edit(later, "h1", hours(10), hours(14), pl.lit(0.0))  # supply lost
    later = edit(later, "h2", hours(30), hours(60), pl.lit(0.06))  # a missed routine: standby
    later = edit(later, "h3", hours(40), hours(46), pl.col("kwh") + 1.25)  # a heater left on
    later = drop(later, "h4", cut, hours(9.5))  # a silent meter
    tick, bulk = engines("Europe/London")
    assert replay(warm, engine=tick) == []  # a warm-up without anomalies
    bulk.learn_readings(warm)
    assert_learned_the_same(tick, bulk)
    if prep_rows:
        assert (bulk.a.prep_day >= 0).sum() == 4
    after_tick = [f.to_dict() for f in replay(later, engine=tick)]
    after_bulk = [f.to_dict() for f in replay(later, engine=bulk)]
    assert after_bulk == after_tick
    kinds = {f["kind"] for f in after_tick if f["event"] == "raised"}
    assert {"no_power", "inactivity", "high_load", "data_gap"} <= kinds


def test_learning_needs_a_new_engine_and_one_interval():
    eng = Engine(EngineConfig(tz="Asia/Shanghai"))
    eng.register(pl.DataFrame({"household_id": ["a", "b"], "interval_s": [1800, 900]}))
    with pytest.raises(ValueError, match="one interval"):
        eng.learn(np.zeros((2, 10), np.float32), 1_767_225_600)
    with pytest.raises(ValueError, match="negative"):
        eng.learn(np.full((1, 10), -1, np.float32), 1_767_225_600, np.array([0]))
    eng.learn(np.full((1, 10), 0.3, np.float32), 1_767_225_600, np.array([0]))
    assert eng.now == 1_767_225_600 + 10 * 1800
    with pytest.raises(ValueError, match="already seen data"):
        eng.learn(np.full((1, 10), 0.3, np.float32), eng.now, np.array([0]))
