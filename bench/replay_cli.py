"""`lianxin replay` as a whole process (read, check, replay, write) on 1,000 homes x 1 year.

    .venv/bin/python bench/replay_cli.py [--runs 3] [--dir /tmp/lianxin-replay-bench]
                                         [--order meter time] [--lcl .../data.parquet]

The input is 10 rotated copies of the real London sample (../shared/data/lcl_london, 99 homes,
2013, half-hourly): copy k is every home shifted k x 5 weeks round the year (a reading that
falls past the year's end wraps to its start), named `<home>-k`; 990 homes, ~16.7 M readings.
Written twice: grouped by meter (each home's year together, in time order) and in time order
across meters (as a feed or a daily export arrives). Each run is timed by `/usr/bin/time -v`
around `lianxin replay`: wall time and peak RSS of the whole process. Prints medians, the load
and the machine; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
LCL = ROOT.parent / "shared" / "data" / "lcl_london" / "data.parquet"
LIANXIN = Path(sys.executable).with_name("lianxin")


def build(folder: Path, lcl: Path = LCL) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"meter": folder / "by_meter.parquet", "time": folder / "by_time.parquet"}
    if all(p.exists() for p in paths.values()):
        return paths
    real = pl.read_parquet(lcl)
    year0 = pl.datetime(2013, 1, 1)
    year_us = 365 * 86400 * 10**6
    parts = []
    for k in range(10):
        shift_us = k * 35 * 86400 * 10**6
        since = (pl.col("ts") - year0).dt.total_microseconds()
        parts.append(
            real.with_columns(
                household_id=pl.col("household_id") + f"-{k}",
                ts=year0 + pl.duration(microseconds=(since + shift_us) % year_us),
            )
        )
    # The sample's times have no DST gap or repeat (they are GMT): written as UTC, so that a
    # rotated copy never lands in a local time that does not exist.
    df = pl.concat(parts).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    df.sort("household_id", "ts").write_parquet(paths["meter"])
    df.sort("ts", "household_id").write_parquet(paths["time"])
    return paths


def timed(readings: Path, out: Path) -> tuple[float, float, float, str]:
    cmd = ["/usr/bin/time", "-v", str(LIANXIN), "replay", "--readings", str(readings),
           "--tz", "Europe/London", "--out", str(out), "--quiet"]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = re.search(r"Elapsed \(wall clock\) time .*?: (?:(\d+):)?(\d+):([\d.]+)", p.stderr)
    h, m, s = wall.groups()
    seconds = int(h or 0) * 3600 + int(m) * 60 + float(s)
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", p.stderr))
    return seconds, cpu, rss_kib / 2**20, p.stdout.strip()


def machine() -> str:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
         if ln.startswith("model name")), platform.processor(),
    )  # fmt: skip
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/lianxin-replay-bench"))
    ap.add_argument("--lcl", type=Path, default=LCL, help="the London sample's data.parquet")
    ap.add_argument("--order", nargs="+", default=["meter", "time"], choices=["meter", "time"])
    args = ap.parse_args()
    paths = build(args.dir, args.lcl)
    n = pl.scan_parquet(paths["meter"]).select(pl.len()).collect().item()
    print(f"machine: {machine()}")
    for order in args.order:
        runs = []
        for i in range(args.runs):
            load = os.getloadavg()[0]
            wall, cpu, rss, said = timed(paths[order], args.dir / f"findings_{order}.jsonl")
            runs.append((wall, cpu, rss))
            print(f"  {order} run {i + 1}: wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS "
                  f"{rss:.2f} GiB, load before {load:.2f} ({said})")  # fmt: skip
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rss = max(r[2] for r in runs)
        print(
            f"replay CLI, rows {'grouped by meter' if order == 'meter' else 'in time order'}: "
            f"{n:,} readings, median wall {wall:.1f} s = {n / wall / 1e6:.2f} M readings/s "
            f"(CPU {cpu:.1f} s = {n / cpu / 1e6:.2f} M readings per CPU-second), "
            f"peak RSS {rss:.2f} GiB (median of {len(runs)}; "
            f"load after {os.getloadavg()[0]:.2f})"
        )


if __name__ == "__main__":
    main()
