"""`lianxin spark replay` in Spark local mode against the in-process replay, on the same data.

    .venv/bin/python bench/spark_replay.py [--homes 99 495 1980] [--weeks 6] [--master local[2]]
                                           [--shards 8] [--dir /tmp/lianxin-spark-bench]

The input is rotated copies of the real London sample (../shared/data/lcl_london, 99 homes,
2013, half-hourly; copy k shifted k x 5 weeks round the year, named `<home>-k`), the first
--weeks weeks, in transformer areas of 50 homes, written as Parquet partitioned by day. For each
number of homes it times, on the same folder and the same pinned priors:

- in process: read the folder (polars), learn the priors over the first 28 days, replay;
- Spark: `spark_replay` (both stages, findings and snapshots written), the session already up
  and warmed by one run (session start-up and that first run are printed apart).

Prints readings/s of each, the findings checked equal, the load and the machine; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from replay_cli import machine  # noqa: E402

LCL = ROOT.parent / "shared" / "data" / "lcl_london" / "data.parquet"
TZ = "Europe/London"


def build(folder: Path, homes: int, weeks: int, lcl: Path) -> Path:
    out = folder / f"readings_{homes}x{weeks}w"
    if out.exists():
        return out
    real = pl.read_parquet(lcl)
    ids = sorted(real["household_id"].unique())
    year0 = pl.datetime(2013, 1, 1)
    year_us = 365 * 86400 * 10**6
    parts = []
    for k in range(-(-homes // len(ids))):
        since = (pl.col("ts") - year0).dt.total_microseconds()
        parts.append(
            real.with_columns(
                household_id=pl.col("household_id") + f"-{k}",
                ts=year0 + pl.duration(microseconds=(since + k * 35 * 86400 * 10**6) % year_us),
            )
        )
    df = pl.concat(parts)
    keep = sorted(df["household_id"].unique())[:homes]
    df = df.filter(
        pl.col("household_id").is_in(keep) & (pl.col("ts") < pl.datetime(2013, 1, 1) +
                                              pl.duration(weeks=weeks))  # fmt: skip
    ).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    tmp = out.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    df.with_columns(day=pl.col("ts").dt.date()).sort("household_id", "ts").write_parquet(
        tmp, partition_by="day"
    )
    tmp.rename(out)
    pl.DataFrame(
        {"household_id": keep, "transformer_area": [f"TA-{i // 50:04d}" for i in range(len(keep))]}
    ).write_parquet(folder / f"topology_{homes}.parquet")
    return out


def in_process(readings: Path, topology: pl.DataFrame, prior_days: int):
    from lianxin.engine.config import EngineConfig
    from lianxin.engine.core import Engine
    from lianxin.engine.priors import learn_priors
    from lianxin.engine.replay import replay
    from lianxin.meterdata import epoch_seconds

    t0 = time.perf_counter()
    d = pl.read_parquet(readings / "**" / "*.parquet", hive_partitioning=False).drop(
        "day", strict=False
    )
    until = int(epoch_seconds(d["ts"], TZ).min()) + prior_days * 86400
    priors = learn_priors(d, until, EngineConfig(tz=TZ))
    eng = Engine(EngineConfig(tz=TZ))
    eng.pin_priors(*priors.values())
    found = replay(d, topology=topology, engine=eng)
    return time.perf_counter() - t0, d.height, found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--homes", type=int, nargs="+", default=[99, 495, 1980])
    ap.add_argument("--weeks", type=int, default=6)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--prior-days", type=int, default=28)
    ap.add_argument("--lcl", type=Path, default=LCL, help="the London sample's data.parquet")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/lianxin-spark-bench"))
    args = ap.parse_args()

    from lianxin.spark.job import session, spark_replay
    from lianxin.spark.shard import findings_of

    args.dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    spark = session(args.master)
    spark.sparkContext.setLogLevel("ERROR")
    print(f"Spark {spark.version} {args.master}: session up in {time.perf_counter() - t0:.1f} s")
    # The first run pays once for what later runs reuse (JIT, Python workers): apart.
    readings = build(args.dir, args.homes[0], args.weeks, args.lcl)
    shutil.rmtree(args.dir / "warm", ignore_errors=True)
    t0 = time.perf_counter()
    spark_replay(spark, str(readings), str(args.dir / "warm"), shards=args.shards,
                 prior_days=args.prior_days, tz=TZ)  # fmt: skip
    print(f"first run ({args.homes[0]} homes, warm-up, not counted): "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    print("| homes | readings | in process | Spark local | findings equal |")
    print("|---|---|---|---|---|")
    key = lambda r: (r["detected_at"], r["finding_id"], r["event"])  # noqa: E731
    for homes in args.homes:
        readings = build(args.dir, homes, args.weeks, args.lcl)
        topology = pl.read_parquet(args.dir / f"topology_{homes}.parquet")
        wall, n, found = in_process(readings, topology, args.prior_days)
        out = args.dir / f"out_{homes}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        spark_replay(spark, str(readings), str(out), topology=topology, shards=args.shards,
                     prior_days=args.prior_days, tz=TZ)  # fmt: skip
        swall = time.perf_counter() - t0
        table = pl.read_parquet(out / "findings" / "*.parquet")
        got = sorted((f.to_dict() for f in findings_of(table)), key=key)
        same = got == sorted((f.to_dict() for f in found), key=key)
        print(f"| {homes:,} | {n:,} | {wall:.1f} s, {n / wall / 1e3:,.0f} k/s | "
              f"{swall:.1f} s, {n / swall / 1e3:,.0f} k/s | {same} |", flush=True)  # fmt: skip
    spark.stop()
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {machine()}")


if __name__ == "__main__":
    main()
