"""File import throughput: readings/s and peak memory for
  1. a State Grid 96-point CSV of 100,000 meters x 1 day (9.6 M readings), GBK and UTF-8;
  2. a long-format Parquet file of 10 million readings (10,000 meters x 1,000 quarter-hours);
each through the whole `lianxin import` path (sniff, parse, validate, meter look-up in the
database, durable store write). Each case runs in its own process so its peak RSS is its own.

    .venv/bin/python bench/ingest.py            # all cases
    .venv/bin/python bench/ingest.py csv-gbk    # one case: csv-gbk, csv-utf8, parquet,
                                                # csv-register (creates the 100,000 meters),
                                                # store-10k (store.write of 10,000-reading batches)

HTTP batches (engineer B's path) are measured in bench/ingest_http.py.
Targets (issue 3): Parquet >= 2,000,000 readings/s, 96-point CSV >= 500,000 readings/s on 2 cores.
"""

import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

N_METERS = 100_000
LONG_METERS = 10_000
LONG_POINTS = 1_000
WORK = Path(os.environ.get("LIANXIN_BENCH_DIR") or tempfile.gettempdir()) / "lianxin-bench-ingest"


def setup():
    """Data directory with 100,000 registered meters, and the input files (made once)."""
    os.environ["LIANXIN_HOME"] = str(WORK / "home")
    os.environ["DJANGO_SETTINGS_MODULE"] = "lianxin.web.settings"
    from lianxin.web.setup import migrate, setup_django

    setup_django()
    migrate()
    from lianxin.care.models import Household, Meter

    if Meter.objects.count() < N_METERS:
        Household.objects.bulk_create(
            [Household(code=f"H{i:07d}", address=f"addr {i}") for i in range(N_METERS)],
            batch_size=5000,
            ignore_conflicts=True,
        )
        ids = dict(Household.objects.values_list("code", "id"))
        Meter.objects.bulk_create(
            [
                Meter(number=_meter(i), account_number=f"A{i:09d}", household_id=ids[f"H{i:07d}"])
                for i in range(N_METERS)
            ],
            batch_size=5000,
            ignore_conflicts=True,
        )
    _curve_csv(WORK / "curve_gbk.csv", "gbk")
    _curve_csv(WORK / "curve_utf8.csv", "utf-8")
    _long_parquet(WORK / "long.parquet")


def _meter(i: int) -> str:
    return f"3330001{i:015d}"


def _curve_csv(path: Path, encoding: str):
    if path.exists():
        return
    import numpy as np

    rng = np.random.default_rng(1)
    clock = [f"{(k * 15) // 60}:{(k * 15) % 60:02d}" for k in range(1, 97)]
    names = ["杜明华", "李秀英", "王建国", "张桂兰"]
    with open(path, "w", encoding=encoding, newline="") as fh:
        fh.write("96点负荷曲线(kW)\r\n")
        fh.write(",".join(["户号", "表号", "户名", "台区编号", "数据日期", *clock]) + "\r\n")
        for start in range(0, N_METERS, 10_000):
            values = rng.gamma(2.0, 0.3, size=(10_000, 96)).round(3)
            rows = []
            for j in range(10_000):
                i = start + j
                vals = ",".join(f"{v:.3f}" for v in values[j])
                rows.append(
                    f"A{i:09d},{_meter(i)},{names[i % 4]},TA{i // 200:05d},2024-03-01,{vals}"
                )
            fh.write("\r\n".join(rows) + "\r\n")


def _long_parquet(path: Path):
    if path.exists():
        return
    import numpy as np
    import polars as pl

    n = LONG_METERS * LONG_POINTS
    steps = (np.arange(n) % LONG_POINTS) * np.timedelta64(15, "m")
    df = pl.DataFrame(
        {
            "meter": np.repeat([_meter(i) for i in range(LONG_METERS)], LONG_POINTS),
            "ts": (np.datetime64("2024-01-01T00:00", "us") + steps).astype("datetime64[us]"),
            "value": np.random.default_rng(2).gamma(2.0, 0.1, n).round(3),
            "unit": ["kWh"] * n,
        }
    )
    df.write_parquet(path, row_group_size=1_000_000)


def store_batches():
    """The store alone, as the HTTP/MQTT paths use it: 10,000-reading batches (100,000 meters,
    one quarter-hour each) written one after another into a day that already holds 8 M
    readings; each write() is durable when it returns."""
    import shutil
    from datetime import UTC, datetime, timedelta

    import numpy as np
    import polars as pl

    from lianxin.store import ReadingsStore

    root = WORK / "store-batches"
    shutil.rmtree(root, ignore_errors=True)
    store = ReadingsStore(root)
    meters = [_meter(i) for i in range(N_METERS)]
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    for q in range(0, 80, 8):
        ts = [t0 + timedelta(minutes=15 * (q + j)) for j in range(8)]
        store.write(
            pl.DataFrame(
                {"meter": np.repeat(meters, 8), "ts": ts * N_METERS, "value": 0.1, "unit": "kWh"}
            ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
        )
    store.compact(full=True)
    batches = []
    for q in range(80, 90):  # 100 batches: small-file compactions happen along the way
        for b in range(0, N_METERS, 10_000):
            batches.append(
                pl.DataFrame(
                    {"meter": meters[b : b + 10_000], "ts": t0 + timedelta(minutes=15 * q)}
                ).with_columns(
                    pl.col("ts").cast(pl.Datetime("us", "UTC")), value=0.2, unit=pl.lit("kWh")
                )
            )
    latencies = []
    t_start = time.perf_counter()
    for df in batches:
        t = time.perf_counter()
        store.write(df)
        latencies.append(time.perf_counter() - t)
    dt = time.perf_counter() - t_start
    n = sum(df.height for df in batches)
    latencies.sort()
    print(
        f"{'store-10k':<12} {n:>11,} readings in {dt:6.2f} s = {n / dt:>11,.0f} readings/s   "
        f"({len(batches)} batches of 10,000 into a day of 8 M; write() p50 "
        f"{latencies[len(latencies) // 2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms)",
        flush=True,
    )


def run_case(case: str):
    import shutil

    if case == "store-10k":
        return store_batches()
    setup()
    from lianxin.ingest.pipeline import import_file
    from lianxin.ingest.readers import Options
    from lianxin.meterdata import DEFAULT_TIME_ZONE

    path = {
        "csv-gbk": "curve_gbk.csv",
        "csv-utf8": "curve_utf8.csv",
        "parquet": "long.parquet",
        "csv-register": "curve_gbk.csv",
    }[case]
    register = case == "csv-register"
    if register:  # an empty database: all 100,000 meters are created from the export's columns
        from lianxin.care.models import Household, Meter

        Meter.objects.all().delete()
        Household.objects.all().delete()
        home = WORK / "home-register"
        shutil.rmtree(home, ignore_errors=True)
    else:
        home = WORK / "home"
    # A fresh readings folder per case, so each measures writing new readings.
    shutil.rmtree(home / "readings", ignore_errors=True)
    t0 = time.perf_counter()
    summary = import_file(
        WORK / path, Options(time_zone=DEFAULT_TIME_ZONE), register_unknown=register, home=home
    )
    dt = time.perf_counter() - t0
    total = summary.total()
    assert not summary.rejected and not summary.error, summary.lines()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = (WORK / path).stat().st_size / 1e6
    print(
        f"{case:<12} {total.accepted:>11,} readings in {dt:6.2f} s = "
        f"{total.accepted / dt:>11,.0f} readings/s   (file {size:,.0f} MB, peak RSS {rss:,.0f} MB)",
        flush=True,
    )


def main():
    cases = sys.argv[1:] or ["csv-gbk", "csv-utf8", "parquet", "csv-register", "store-10k"]
    if os.environ.get("_LIANXIN_BENCH_CHILD"):  # a child runs exactly one case, never spawns
        run_case(cases[0])
        return
    print(f"lianxin bench/ingest.py  {date.today()}  cores={os.cpu_count()}  work={WORK}")
    print("(first run also builds the inputs and 100,000 meters; the machine may be shared)")
    for case in cases:
        subprocess.run(
            [sys.executable, __file__, case],
            env={**os.environ, "_LIANXIN_BENCH_CHILD": "1"},
            check=True,
        )


if __name__ == "__main__":
    main()
