"""Engine benchmark: replay throughput, one incremental step for 100,000 / 1,000,000 homes, and
learning routines from weeks of history.

    .venv/bin/python bench/engine.py [--replay-homes 1000] [--step-homes 100000 1000000]
                                     [--learn-homes 100000] [--learn-weeks 8] [--learn-tick]

Replay: 1,000 homes x 1 year of 30-minute data, built from the real LCL curves in
../shared/data (each real home copied with its own scale, so the curves stay real). Step: the
same `Engine.tick` the monitor and replay run, for every home at once, on a warmed-up engine
(one week of ticks first); the figures are medians over ordinary intervals, plus the intervals
that end a local hour (learning one hour slot) and a local day. Learn: generated 30-minute
history through Engine.learn (the bulk warm-up), and with --learn-tick through Engine.tick as
well. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import polars as pl

from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.inputs import prepare_readings
from lianxin.engine.replay import replay
from lianxin.meterdata import DEFAULT_TIME_ZONE

LCL = Path(__file__).resolve().parents[2] / "shared" / "data" / "lcl_london" / "data.parquet"


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def replay_bench(homes: int) -> None:
    real = pl.read_parquet(LCL)
    ids = real["household_id"].unique(maintain_order=True).to_list()
    rng = np.random.default_rng(0)
    parts = []
    for i in range(homes):
        src = ids[i % len(ids)]
        scale = float(rng.uniform(0.7, 1.3))
        parts.append(
            real.filter(pl.col("household_id") == src).with_columns(
                household_id=pl.lit(f"{src}-{i:05d}"), kwh=pl.col("kwh") * scale
            )
        )
    df = pl.concat(parts).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    n = df.height
    t0 = time.perf_counter()
    prepare_readings(df, "UTC")
    prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    findings = replay(df, config=EngineConfig(tz="Europe/London"))
    total = time.perf_counter() - t0
    print(
        f"replay: {homes:,} homes x 1 year, {n:,} readings: {total:.1f} s = "
        f"{n / total / 1e6:.2f} M readings/s (input checks and layout {prep:.1f} s); "
        f"{len(findings):,} finding events; peak RSS {peak_rss_gib():.2f} GiB"
    )


def step_bench(homes: int) -> None:
    eng = Engine(EngineConfig(tz=DEFAULT_TIME_ZONE))
    ids = pl.DataFrame({"household_id": [f"h{i:07d}" for i in range(homes)]})
    eng.register(ids)
    rng = np.random.default_rng(1)
    base = 1_767_225_600  # 2026-01-01 00:00 UTC
    shape = np.array([0.1] * 14 + [0.6] * 4 + [0.25] * 16 + [0.9] * 10 + [0.2] * 4, np.float32)
    plain, hourly, daily = [], [], []
    ticks = 48 * 8
    for i in range(ticks):
        now = base + (i + 1) * 1800
        kw = (shape[i % 48] * rng.uniform(0.5, 1.5, homes)).astype(np.float32)
        has = rng.random(homes) > 0.001  # a few readings missing, as in real feeds
        kw[~has] = np.nan
        t0 = time.perf_counter()
        eng.tick(now, has, kw)
        dt = time.perf_counter() - t0
        if i < 48 * 7:
            continue  # warm-up week
        local_minute = ((now + 8 * 3600) % 86400) // 60
        (daily if local_minute == 30 else hourly if local_minute % 60 == 30 else plain).append(dt)
    state = eng.state_bytes() / 2**30
    blob_t = time.perf_counter()
    blob = eng.snapshot()
    blob_t = time.perf_counter() - blob_t
    # The live entry point with a polars frame of one reading per home (ids mapped to rows):
    # the first interval also ends a local hour (its learning included), the second does not.
    step_frame = []
    for k in range(2):
        ts = pl.from_epoch(pl.Series([base + (ticks + k) * 1800] * homes), "s")
        frame = pl.DataFrame(
            {
                "household_id": ids["household_id"],
                "ts": ts.dt.replace_time_zone("UTC"),
                "kwh": rng.uniform(0.05, 0.5, homes),
            }
        )
        t0 = time.perf_counter()
        eng.step(frame)
        step_frame.append(time.perf_counter() - t0)
    print(
        f"step: {homes:,} homes: ordinary interval {np.median(plain) * 1000:.0f} ms, "
        f"interval ending an hour (learns that hour slot) {np.median(hourly) * 1000:.0f} ms, "
        f"ending a day {np.median(daily) * 1000:.0f} ms; Engine.step(frame) with the ids "
        f"{step_frame[1] * 1000:.0f} ms ({step_frame[0] * 1000:.0f} ms ending an hour); "
        f"state {state:.2f} GiB, snapshot {len(blob) / 2**30:.2f} GiB "
        f"in {blob_t:.1f} s; peak RSS {peak_rss_gib():.2f} GiB"
    )


def learn_data(homes: int, weeks: int) -> tuple[int, np.ndarray]:
    """`weeks` of 30-minute history for `homes` homes: (start, homes x intervals of kW).

    Generated per interval, vectorised: each home has its own scale, wake-up and evening shift
    and standby; readings are noisy, a few are missing, and some homes are away for whole days
    (standby only)."""
    rng = np.random.default_rng(2)
    start = 1_767_225_600 - 8 * 3600  # local midnight, 2026-01-01 (UTC+8, the default zone)
    shape = np.array([0.1] * 14 + [0.6] * 4 + [0.25] * 16 + [0.9] * 10 + [0.2] * 4, np.float32)
    scale = rng.lognormal(0.0, 0.4, homes).astype(np.float32)
    standby = rng.uniform(0.03, 0.2, homes).astype(np.float32)
    shift = rng.integers(-3, 4, homes)  # half hours earlier/later than the generic shape
    ticks = weeks * 7 * 48
    kw = np.empty((homes, ticks), np.float32)
    block = np.empty((48, homes), np.float32)  # a day at a time, written to the rows at once
    for i in range(ticks):
        if i % 48 == 0:
            away = rng.random(homes) < 0.03
        v = standby + scale * shape[(i - shift) % 48] * rng.uniform(0.3, 1.7, homes).astype(
            np.float32
        )
        v = np.where(away, standby, v).astype(np.float32)
        v[rng.random(homes) <= 0.002] = np.nan
        block[i % 48] = v
        if i % 48 == 47:
            kw[:, i - 47 : i + 1] = block.T
    return start, kw


def learn_bench(homes: int, weeks: int, tick: bool) -> None:
    """Learning routines from scratch: `weeks` of 30-minute history for `homes` homes, with
    Engine.learn (the bulk path: the issue's target is 100,000 homes x 8 weeks in < 10 s), and
    with `tick` also through Engine.tick interval by interval, as replay would, for comparison
    (the learned state is the same)."""
    g0 = time.perf_counter()
    start, kw = learn_data(homes, weeks)
    gen = time.perf_counter() - g0
    ids = pl.DataFrame({"household_id": [f"h{i:07d}" for i in range(homes)]})
    n = kw.size
    eng = Engine(EngineConfig(tz=DEFAULT_TIME_ZONE))
    eng.register(ids)
    rss0 = peak_rss_gib()
    t0 = time.perf_counter()
    eng.learn(kw, start)
    total = time.perf_counter() - t0
    print(
        f"learn: {homes:,} homes x {weeks} weeks ({n / 1e6:.0f} M readings) with Engine.learn: "
        f"{total:.1f} s = {n / total / 1e6:.1f} M readings/s (+ {gen:.1f} s generating data); "
        f"homes with >= 28 days: {(eng.a['days_seen'] >= 28).mean():.2f}; "
        f"peak RSS {peak_rss_gib():.2f} GiB ({rss0:.2f} GiB before learning, with the data)"
    )
    if not tick:
        return
    eng = Engine(EngineConfig(tz=DEFAULT_TIME_ZONE))
    eng.register(ids)
    t0 = time.perf_counter()
    for i in range(kw.shape[1]):
        v = np.ascontiguousarray(kw[:, i])
        eng.tick(start + (i + 1) * 1800, ~np.isnan(v), v)
    total = time.perf_counter() - t0
    print(
        f"learn: the same through Engine.tick: {total:.1f} s = {n / total / 1e6:.2f} M "
        f"readings/s (incl. taking each interval's column); peak RSS {peak_rss_gib():.2f} GiB"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--replay-homes", type=int, default=1000)
    p.add_argument("--step-homes", type=int, nargs="*", default=[100_000, 1_000_000])
    p.add_argument("--learn-homes", type=int, default=0, help="e.g. 100000")
    p.add_argument("--learn-weeks", type=int, default=8)
    p.add_argument(
        "--learn-tick", action="store_true", help="also learn through Engine.tick (slow: a minute)"
    )
    args = p.parse_args()
    if args.replay_homes:
        replay_bench(args.replay_homes)
    for n in args.step_homes:
        step_bench(n)
    if args.learn_homes:
        learn_bench(args.learn_homes, args.learn_weeks, args.learn_tick)


if __name__ == "__main__":
    main()
