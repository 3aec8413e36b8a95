"""apply_findings of one step's burst at N homes, the database alone (no engine): the ~30 k
`inactivity raised` findings of the first step after a warm-up at a million homes (3 % of homes
quiet for hours, ~1 % of them enrolled), or a grid outage of whole transformer areas.

    .venv/bin/python bench/apply_burst.py [--homes 1000000] [--findings 30000]
                                          [--kind inactivity|grid_outage]
                                          [--database-url postgres://…] [--profile F]

The database is bench/monitor_scale.py's (N households and meters, 200 to a transformer area,
1 % enrolled with consent), in a fresh temporary data directory (SQLite) or the given
PostgreSQL database (emptied first). inactivity: --findings homes drawn at random, one
finding each, worded and with evidence as the engine's. grid_outage: --findings transformer
areas, each naming its 200 homes. Prints the wall and CPU time of the one apply_findings call,
alerts opened and applied-finding rows written, and the machine. Asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from monitor_scale import django_env, machine, prepare_db  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--homes", type=int, default=1_000_000)
    p.add_argument("--findings", type=int, default=30_000)
    p.add_argument("--kind", choices=["inactivity", "grid_outage"], default="inactivity")
    p.add_argument("--database-url", default=None, help="default: SQLite in a temporary folder")
    p.add_argument("--profile", default="", help="write the call's cProfile stats to this file")
    args = p.parse_args()
    db = "PostgreSQL" if (args.database_url or "").startswith("postgres") else "SQLite"
    print(f"machine: {machine()}; database {db}", flush=True)
    django_env(Path(tempfile.mkdtemp(prefix="apply-burst-")), args.database_url)
    t0 = time.perf_counter()
    prepare_db(args.homes, args.database_url)
    print(f"{args.homes:,} homes set up in {time.perf_counter() - t0:.0f} s", flush=True)

    from lianxin.alerts.models import Alert, AppliedFinding
    from lianxin.alerts.service import apply_findings
    from lianxin.engine.findings import Finding

    now = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
    start = now - timedelta(hours=5)
    if args.kind == "inactivity":
        picked = np.random.default_rng(7).choice(args.homes, args.findings, replace=False)
        findings = [
            Finding.about_home(
                "inactivity",
                "warning",
                start,
                now,
                "No activity since 08:00 today (5 h). On 6 of the last 7 days this home was "
                "in use for at least 1.5 h 08:00–13:00.",
                "自今天08:00起无用电活动（5小时）。过去7天中有6天08:00至13:00用电活动累计至少1.5小时。",
                f"H{i:07d}",
                {
                    "last_activity": start.isoformat(),
                    "quiet_hours": 5.0,
                    "threshold_hours": 4.0,
                    "days_compared": 7,
                    "days_active_in_window": 6,
                    "busy_hours": 1.5,
                    "window": "08:00-13:00",
                    "log10_chance": -7.63,
                    "longest_quiet_hours": 3.5,
                    "history_days": 7,
                },
                "raised",
            )
            for i in picked
        ]
    else:
        findings = [
            Finding(
                kind="grid_outage",
                severity="critical",
                started_at=now - timedelta(minutes=30),
                detected_at=now,
                reason_en=f"TA{a:05d}: 200 of 200 meters lost power together",
                reason_zh=f"TA{a:05d}：200块电表中200块同时失电",
                transformer_area=f"TA{a:05d}",
                households=tuple(f"H{i:07d}" for i in range(a * 200, (a + 1) * 200)),
            )
            for a in range(args.findings)
        ]
    prof = cProfile.Profile() if args.profile else None
    t0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    touched = apply_findings(findings, now=now)
    if prof:
        prof.disable()
        prof.dump_stats(args.profile)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"apply_findings of {len(findings):,} {args.kind} findings: {wall:.2f} s wall, "
        f"{cpu:.2f} CPU-s of this process; {len(touched)} alerts touched "
        f"({Alert.objects.count()} in the database), "
        f"{AppliedFinding.objects.count():,} applied-finding rows",
        flush=True,
    )


if __name__ == "__main__":
    main()
