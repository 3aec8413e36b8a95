"""The live path at scale: one `lianxin monitor` step with its I/O for 10 k / 100 k / 1 M homes.

    .venv/bin/python bench/monitor_scale.py [--homes 10000 100000 1000000] [--steps 6] [--profile F]
                                            [--weeks 1] [--database-url postgres://…]

Per size, in fresh processes (so each size's peak memory is its own):
  prepare: a data directory and database with N households, meters and transformer areas (200
           homes each), 1 % of homes with an enrolled, consenting resident; the engine warmed up
           on `--weeks` of generated half-hourly history (Engine.learn) and saved as the
           monitor's checkpoint, as a monitor that has been running would have it.
  run:     the real Monitor on that directory. The first step reads the registry from the
           database (start-up). Then, per half hour: the interval's N readings are written to
           the readings store (as the collectors would: not timed as the step), and
           Monitor.step(interval end) is timed: it reads the new interval from the store,
           steps the engine, writes the step's journal record, applies the findings to alerts
           in the database, plus the heartbeat (`monitor_beat`) the loop writes after it. Steps
           ending a local hour are shown apart. Then one more step after one resident is
           edited through the ORM (as the web app saves it): the registry part of the step.
           Last, one checkpoint of the whole state by a forked child while the parent goes on
           (its fork time and the child's write time).
Prints per size: step times (median, max, hour-ending), start-up, journal record size,
checkpoint, peak RSS of the monitor process (and of the checkpoint child), and the machine.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TZ = "Asia/Shanghai"


def gib(kib: int) -> float:
    return kib / 2**20


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo", encoding="ascii", errors="replace"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, load {os.getloadavg()[0]:.1f}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def django_env(home: Path, url: str | None) -> None:
    os.environ["LIANXIN_HOME"] = str(home)
    if url:
        os.environ["DATABASE_URL"] = url
    else:
        os.environ.pop("DATABASE_URL", None)
    from lianxin.web.setup import migrate, setup_django

    setup_django()
    migrate()


def prepare_db(homes: int, url: str | None) -> None:
    """The database of N homes: households, meters, transformer areas (200 homes each), 1 %
    of homes with an enrolled resident who consented to monitoring (codes ending in 00).
    Django set up; on PostgreSQL the database is emptied first."""
    from lianxin.care.models import (
        CareRecipient,
        Consent,
        Household,
        Meter,
        TransformerArea,
    )

    if url:  # PostgreSQL: the bench database may hold a previous size and its alerts
        from django.core.management import call_command

        call_command("flush", interactive=False, verbosity=0)
    areas = TransformerArea.objects.bulk_create(
        [TransformerArea(code=f"TA{a:05d}", name=f"台区{a}") for a in range(-(-homes // 200))],
        batch_size=5000,
    )
    if url is None or not url.startswith("postgres"):
        areas = list(TransformerArea.objects.order_by("code"))
    for lo in range(0, homes, 50_000):
        hi = min(lo + 50_000, homes)
        Household.objects.bulk_create(
            [
                Household(code=f"H{i:07d}", address=f"路{i}号", transformer_area=areas[i // 200])
                for i in range(lo, hi)
            ],
            batch_size=5000,
        )
        ids = dict(
            Household.objects.filter(code__gte=f"H{lo:07d}", code__lt=f"H{hi:07d}").values_list(
                "code", "pk"
            )
        )
        Meter.objects.bulk_create(
            [
                Meter(
                    number=f"M{i:07d}",
                    account_number=f"A{i:07d}",
                    household_id=ids[f"H{i:07d}"],
                    interval_minutes=30,
                )
                for i in range(lo, hi)
            ],
            batch_size=5000,
        )
    enrolled = Household.objects.filter(code__endswith="00").values_list("pk", flat=True)
    people = CareRecipient.objects.bulk_create(
        [CareRecipient(name=f"老人{h}", birth_year=1940, household_id=h) for h in enrolled],
        batch_size=5000,
    )
    Consent.objects.bulk_create(
        [
            Consent(
                care_recipient=p,
                scope="monitoring",
                given_at=datetime(2025, 1, 1, tzinfo=UTC),
                given_by="本人",
            )
            for p in people
        ],
        batch_size=5000,
    )


def prepare(homes: int, home: Path, url: str | None, weeks: int) -> None:
    django_env(home, url)
    t0 = time.perf_counter()
    prepare_db(homes, url)
    db_s = time.perf_counter() - t0

    sys.path.insert(0, str(HERE))
    from engine import learn_data  # bench/engine.py: generated routines, vectorised
    from lianxin.monitor import Monitor

    t0 = time.perf_counter()
    monitor = Monitor(home, TZ)
    monitor.sync_registry()
    start, kw = learn_data(homes, weeks)
    monitor.engine.learn(kw, start)
    del kw
    monitor._checkpoint_now()  # what a running monitor leaves on disk
    monitor.close()
    print(
        json.dumps({"db_s": db_s, "warm_s": time.perf_counter() - t0, "now": monitor.engine.now}),
        flush=True,
    )


def run(homes: int, home: Path, url: str | None, steps: int, now: int, profile: str) -> None:
    django_env(home, url)
    import polars as pl

    from lianxin.health.beats import monitor_beat
    from lianxin.monitor import Monitor

    t0 = time.perf_counter()
    monitor = Monitor(home, TZ, checkpoint_every=timedelta(days=1))
    restore_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = monitor.step(datetime.fromtimestamp(now, UTC))  # start-up: reads the registry
    first_s = time.perf_counter() - t0
    meters = pl.Series("meter", [f"M{i:07d}" for i in range(homes)])
    rng = np.random.default_rng(5)
    shape = np.array([0.1] * 14 + [0.6] * 4 + [0.25] * 16 + [0.9] * 10 + [0.2] * 4)
    plain, hourly, writes, records, found, split = [], [], [], [], 0, []
    worst_dt = 0.0
    for k in range(steps):
        start = now + k * 1800
        slot = ((start + 8 * 3600) % 86400) // 1800
        frame = pl.DataFrame(
            {
                "meter": meters,
                "ts": pl.Series([start * 1_000_000] * homes).cast(pl.Datetime("us", "UTC")),
                "value": shape[slot] * rng.uniform(0.5, 1.5, homes) * 0.5,
                "unit": pl.Series(["kWh"]).extend_constant("kWh", homes - 1),
            }
        )
        w0 = time.perf_counter()
        monitor.stores.readings.write(frame)
        writes.append(time.perf_counter() - w0)
        end = datetime.fromtimestamp(start + 1800, UTC)
        prof = cProfile.Profile() if profile else None
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        report = monitor.step(end)
        monitor_beat(monitor, report, time.perf_counter() - t0, every=60.0, reference=end)
        dt = time.perf_counter() - t0
        if prof:
            prof.disable()
            if dt > worst_dt:  # keep the slowest step's profile
                worst_dt = dt
                prof.dump_stats(profile)
        split.append({**report.seconds, "heartbeat": dt - sum(report.seconds.values())})
        found += len(report.findings)
        assert report.readings == homes, report.readings
        rec = max(monitor.journal_dir.glob("*.rec"), key=lambda p: int(p.stem))
        records.append(rec.stat().st_size)
        (hourly if (start + 1800) % 3600 == 0 else plain).append(dt)
    # One more step, after a care worker edits one resident in the web app (its save stamps
    # the data directory naming the home): the registry part is that home read again.
    from django.db import transaction

    from lianxin.care.models import CareRecipient

    with transaction.atomic():
        person = CareRecipient.objects.order_by("pk").first()
        person.sensitivity = "high" if person.sensitivity != "high" else "normal"
        person.save()
    start = now + steps * 1800
    monitor.stores.readings.write(
        frame.with_columns(ts=pl.Series([start * 1_000_000] * homes).cast(pl.Datetime("us", "UTC")))
    )
    t0 = time.perf_counter()
    report = monitor.step(datetime.fromtimestamp(start + 1800, UTC))
    edited = {"step_s": time.perf_counter() - t0, "registry_s": report.seconds["registry"]}
    state_gib = monitor.engine.state_bytes() / 2**30
    # One checkpoint in the background, as the loop does every --checkpoint-minutes.
    monitor.checkpoint_every = timedelta(0)
    monitor.background_bytes = 0
    t0 = time.perf_counter()
    monitor._maybe_checkpoint()
    fork_s = time.perf_counter() - t0
    monitor._wait_child()
    child_s = time.perf_counter() - t0
    monitor._lock.close()  # no second, synchronous checkpoint at close
    print(
        json.dumps(
            {
                "restore_s": restore_s,
                "first_s": first_s,
                "plain": plain,
                "hourly": hourly,
                "write_s": float(np.median(writes)),
                "record_mib": float(np.median(records)) / 2**20,
                "findings": found,
                "split": {k: float(np.median([s[k] for s in split])) for k in split[0]},
                "worst": max(split, key=lambda s: sum(s.values())),
                "first_split": first.seconds,
                "edited": edited,
                "state_gib": state_gib,
                "fork_s": fork_s,
                "child_s": child_s,
                "rss_gib": gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
                "child_rss_gib": gib(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss),
            }
        ),
        flush=True,
    )


def child(*args) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *map(str, args)], capture_output=True, text=True, check=False
    )
    if out.returncode:
        sys.exit(f"bench child {args[:2]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--homes", type=int, nargs="*", default=[10_000, 100_000])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--weeks", type=int, default=1)
    p.add_argument("--database-url", default=None, help="default: SQLite in the data directory")
    p.add_argument(
        "--profile",
        default="",
        help="write the slowest step's cProfile stats to this file (steps are slower profiled)",
    )
    p.add_argument("--_prepare", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--_run", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._prepare:
        prepare(int(args._prepare[0]), Path(args._prepare[1]), args.database_url, args.weeks)
        return
    if args._run:
        n, home, now = args._run
        run(int(n), Path(home), args.database_url, args.steps, int(now), args.profile)
        return
    db = "PostgreSQL" if (args.database_url or "").startswith("postgres") else "SQLite"
    print(f"machine: {machine()}; database {db}")
    for homes in args.homes:
        home = Path(tempfile.mkdtemp(prefix=f"monitor-scale-{homes}-"))
        try:
            extra = ["--database-url", args.database_url] if args.database_url else []
            prep = child("--weeks", args.weeks, *extra, "--_prepare", homes, home)
            if args.profile:
                extra += ["--profile", args.profile]
            r = child("--steps", args.steps, *extra, "--_run", homes, home, prep["now"])
        finally:
            shutil.rmtree(home, ignore_errors=True)
        plain, hourly = r["plain"], r["hourly"]
        print(
            f"{homes:>9,} homes: step with I/O median {np.median(plain):.2f} s, "
            f"max {max(plain):.2f} s, ending an hour {np.median(hourly):.2f} s "
            f"({len(plain) + len(hourly)} steps, {r['findings']} findings); store write of the "
            f"interval {r['write_s']:.2f} s (ingest, not the step); journal record "
            f"{r['record_mib']:.1f} MiB; start: restore {r['restore_s']:.1f} s + first step "
            f"(registry) {r['first_s']:.1f} s; state {r['state_gib']:.2f} GiB, background "
            f"checkpoint fork {r['fork_s']:.2f} s, written in {r['child_s']:.1f} s; peak RSS "
            f"{r['rss_gib']:.2f} GiB (checkpoint child {r['child_rss_gib']:.2f} GiB, pages "
            f"shared); setup {prep['db_s']:.0f} s database + {prep['warm_s']:.0f} s warm-up",
            flush=True,
        )
        print(
            "           median step split: "
            + ", ".join(f"{k} {v:.3f} s" for k, v in r["split"].items()),
            flush=True,
        )
        for name, key in (("worst step split", "worst"), ("first step split", "first_split")):
            print(
                f"           {name}: " + ", ".join(f"{k} {v:.3f} s" for k, v in r[key].items()),
                flush=True,
            )
        e = r["edited"]
        print(
            f"           a step after one resident edited in the web app: {e['step_s']:.2f} s "
            f"(registry {e['registry_s']:.3f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
