"""Engine benchmark: replay throughput, and one incremental step for 100,000 / 1,000,000 homes.

    .venv/bin/python bench/engine.py [--replay-homes 1000] [--step-homes 100000 1000000]

Replay: 1,000 homes x 1 year of 30-minute data, built from the real LCL curves in
../shared/data (each real home copied with its own scale, so the curves stay real). Step: the
same `Engine.tick` the monitor and replay run, for every home at once, on a warmed-up engine
(one week of ticks first); the figures are medians over ordinary intervals, plus the intervals
that end a local hour (learning one hour slot) and a local day. Prints figures, asserts nothing.
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
from lianxin.engine.replay import prepare_readings, replay

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
    eng = Engine(EngineConfig(tz="Asia/Shanghai"))
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
    # The live entry point with a polars frame of one reading per home (ids joined to rows).
    ts = pl.from_epoch(pl.Series([base + ticks * 1800] * homes), "s")
    frame = pl.DataFrame(
        {
            "household_id": ids["household_id"],
            "ts": ts.dt.replace_time_zone("UTC"),
            "kwh": rng.uniform(0.05, 0.5, homes),
        }
    )
    t0 = time.perf_counter()
    eng.step(frame)
    step_frame = time.perf_counter() - t0
    print(
        f"step: {homes:,} homes: ordinary interval {np.median(plain) * 1000:.0f} ms, "
        f"interval ending an hour (learns that hour slot) {np.median(hourly) * 1000:.0f} ms, "
        f"ending a day {np.median(daily) * 1000:.0f} ms; Engine.step(frame) incl. id join "
        f"{step_frame * 1000:.0f} ms; state {state:.2f} GiB, snapshot {len(blob) / 2**30:.2f} GiB "
        f"in {blob_t:.1f} s; peak RSS {peak_rss_gib():.2f} GiB"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--replay-homes", type=int, default=1000)
    p.add_argument("--step-homes", type=int, nargs="*", default=[100_000, 1_000_000])
    args = p.parse_args()
    if args.replay_homes:
        replay_bench(args.replay_homes)
    for n in args.step_homes:
        step_bench(n)


if __name__ == "__main__":
    main()
