"""`lianxin demo`: the whole system on one machine, with a town whose homes replay real curves.

Seeds the demo town, warms the engine up on weeks of real history, then catches up on the last
hours before now with incidents, at full speed, raising each alert at its own time, before the
duty room opens. From then on the demo's clock is the wall clock: each quarter-hour's readings
arrive when it ends, as meters report, through the same monitor that runs in production.

Why not an accelerated clock: the duty room's times ("since", "x min ago", the latest reading,
the wall screen's timer, away periods an operator sets) are read against the wall clock. A demo
that replayed yesterday quickly made them all disagree (issue 12, defect 20). New alerts now
arrive at the pace of real data; the catch-up fills the queue for the first look.
"""

import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lianxin.commands.progress import add_quiet

BEAT_EVERY = 30.0  # seconds between the demo monitor's heartbeats while it waits

DEFAULT_SAMPLE = Path(__file__).resolve().parents[3] / "tests" / "data" / "lcl_sample.parquet"


def add_arguments(parser):
    parser.add_argument(
        "--seed", type=int, default=2021, help="random seed of the demo town (default %(default)s)"
    )
    parser.add_argument(
        "--households", type=int, default=240, help="households in the town (default %(default)s)"
    )
    parser.add_argument("--seed-only", action="store_true", help="seed the database and exit")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--catch-up-hours",
        type=float,
        default=12.0,
        help="hours before now replayed with incidents before the duty room opens, at full "
        "speed, each alert raised at its own time (default %(default)s)",
    )
    parser.add_argument(
        "--warmup-days",
        type=int,
        default=42,
        help="days of history the engine learns from first (default %(default)s)",
    )
    parser.add_argument(
        "--incident-every",
        type=float,
        default=60.0,
        help="mean minutes of the town's time between incidents, in the catch-up and live "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=0,
        help="stop after this many live quarter-hours (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--sample",
        type=Path,
        default=DEFAULT_SAMPLE,
        help="real half-hourly curves to replay (household_id, ts, kwh)",
    )
    add_quiet(parser)


def run(args) -> int:
    from lianxin.web.setup import migrate, setup_django

    setup_django()
    migrate()
    from lianxin.care.seed import DEMO_PASSWORD, DEMO_USERS, is_seeded, seed_demo_town

    if is_seeded():
        print("demo town already seeded (delete the data directory to start afresh)")
    else:
        s = seed_demo_town(seed=args.seed, households=args.households)
        print(
            f"seeded demo town (seed {args.seed}): {s.households} households on "
            f"{s.transformer_areas} transformer areas, {s.meters} meters, "
            f"{s.care_recipients} care recipients"
        )
        from lianxin.ledgers.demo import seed_history

        h = seed_history(seed=args.seed)
        print(
            f"a year of history for the ledgers: {h.alerts} alerts, {h.work_orders} work orders, "
            f"{h.calls} calls, {h.inspections} inspections, {h.activities} activities, "
            f"{h.campaigns} campaign"
        )
    if args.seed_only:
        _print_logins(DEMO_USERS, DEMO_PASSWORD)
        return 0
    if not args.sample.exists():
        from lianxin.errors import LianxinError

        raise LianxinError(f"the demo needs its sample curves at {args.sample} (see --sample)")

    from django.conf import settings

    from lianxin.monitor import Monitor, StepReport
    from lianxin.monitor.demo import STEP, floor_step

    monitor = Monitor(settings.LIANXIN_HOME, settings.TIME_ZONE)
    monitor.sync_registry()
    feed = _feed(args, settings.TIME_ZONE)
    tz = settings.TIME_ZONE
    chance = min(1.0, STEP.total_seconds() / 60 / max(args.incident_every, 1e-6))
    if monitor.engine.now is None:
        begin = floor_step(datetime.now(UTC) - timedelta(hours=args.catch_up_hours))
        _warm_up(monitor, feed, begin - timedelta(days=args.warmup_days), begin, args.quiet)
    sim = datetime.fromtimestamp(monitor.engine.now, UTC)

    from lianxin.notify import demo as notify_demo

    # The channels deliver to an inbox the demo runs itself: escalation works with no
    # outside service, and a new user sees each message arrive. Configured before the
    # catch-up: an alert raised while no channel exists gets no chain, so the alerts the
    # duty room opens with would never notify anyone.
    inbox = notify_demo.start(settings.LIANXIN_HOME, args.host, args.port + 1, out=sys.stdout)
    # The links in the messages lead to this duty room (unless a deployment URL is set).
    os.environ.setdefault("LIANXIN_BASE_URL", f"http://{args.host}:{args.port}")
    # Catch up to the wall clock before anyone looks: every quarter-hour that has ended, with
    # incidents, each alert raised at its quarter-hour's end. A demo restarted after a pause
    # catches up on the pause the same way.
    began, caught = time.monotonic(), 0
    report = StepReport(now=sim)
    while sim + STEP <= datetime.now(UTC):
        sim, report = _quarter(monitor, feed, sim, chance, tz, alerts_at=sim + STEP)
        caught += 1
    from lianxin.health.beats import monitor_beat

    monitor_beat(monitor, report, time.monotonic() - began, BEAT_EVERY, sim)
    print(
        f"caught up {caught} quarter-hours to {_local(sim, tz)} (now) in "
        f"{time.monotonic() - began:.1f} s",
        flush=True,
    )

    from lianxin.commands.serve import bind

    # Bound before the URL is printed: a slow machine must not print a URL that refuses.
    threading.Thread(target=bind(args.host, args.port).run, daemon=True).start()
    from lianxin.notify.worker import start_thread

    start_thread(out=sys.stdout)  # notifications and escalation, beside the duty room
    print(f"duty room: http://{args.host}:{args.port}/", flush=True)
    _print_logins(DEMO_USERS, DEMO_PASSWORD)
    print(
        f"notifications: {inbox.url}/ shows what the demo's channels delivered (also "
        f"{inbox.path}); on duty now:",
        flush=True,
    )
    for line in notify_demo.on_duty_now():
        print(f"  {line}", flush=True)
    print(
        "live feed: each quarter-hour's readings arrive when it ends on the wall clock, "
        f"next at {_local(sim + STEP, tz)}; Ctrl-C stops",
        flush=True,
    )

    step = 0
    while not args.steps or step < args.steps:
        # Wait for the quarter-hour to end, beating meanwhile so that a killed demo is noticed
        # within minutes, as a production monitor would be. The engine's clock is the last
        # quarter-hour fed: the lag is measured against it.
        while (left := (sim + STEP - datetime.now(UTC)).total_seconds()) > 0:
            monitor_beat(monitor, report, 0.0, BEAT_EVERY, sim)
            time.sleep(min(BEAT_EVERY, left))
        began = time.perf_counter()
        sim, report = _quarter(monitor, feed, sim, chance, tz)
        monitor_beat(monitor, report, time.perf_counter() - began, BEAT_EVERY, sim)
        step += 1
    return 0


def _quarter(monitor, feed, sim, chance, tz, alerts_at=None):
    """Feed the quarter-hour starting at `sim` (an incident may start with it) and run the
    monitor's step; prints what happened. Returns the next quarter-hour and the step's report."""
    from lianxin.monitor.demo import STEP

    nxt = sim + STEP
    if feed.rng.random() < chance:
        inc = feed.schedule(sim)
        print(
            f"[{_local(sim, tz)}] incident: {inc.label}, "
            f"{(inc.end - inc.start).total_seconds() / 3600:.2f} h",
            flush=True,
        )
    monitor.stores.readings.write(feed.frame(sim, nxt))
    events = feed.events(sim, nxt)
    if events is not None:
        monitor.stores.events.write(events)
    report = monitor.step(nxt, alerts_at=alerts_at)
    queued = _queued(report.findings)
    for f in report.findings:
        who = f.household_id or f"{f.transformer_area} ({len(f.households)} homes)"
        # A home where nobody is enrolled is watched (to tell an outage from a fault at
        # home) but never reaches the queue: the log says so instead of "raised".
        what = f.event if queued.get(f.finding_id, True) else "not queued (nobody enrolled):"
        print(f"[{_local(nxt, tz)}] {what} {f.kind} {who}: {f.reason_en}", flush=True)
    return nxt, report


def _feed(args, tz):
    from lianxin.care.models import CareRecipient, Meter
    from lianxin.monitor.demo import DemoFeed

    meters = list(
        Meter.objects.filter(kind=Meter.Kind.ELECTRICITY, active=True)
        .order_by("household__code", "number")
        .values_list("number", "household__code", "household__transformer_area__code")
    )
    cared = set(CareRecipient.objects.values_list("household__code", flat=True))
    care_rows = [i for i, (_, home, _) in enumerate(meters) if home in cared]
    return DemoFeed(
        args.sample,
        [m for m, _, _ in meters],
        [a or "" for _, _, a in meters],
        care_rows,
        tz,
        seed=args.seed,
    )


def _warm_up(monitor, feed, start, live, quiet=False):
    from lianxin.commands.progress import bar, ticks

    began = time.monotonic()
    t = start
    written = 0
    weeks = -(-(live - start) // timedelta(days=7))
    with bar(total=weeks, unit=" weeks", desc="writing history", quiet=quiet) as b:
        while t < live:
            end = min(t + timedelta(days=7), live)
            frame = feed.frame(t, end, with_incidents=False)
            written += monitor.stores.readings.write(frame).accepted
            t = end
            b.update()
    with bar(unit=" intervals", desc="engine learning", quiet=quiet) as b:
        report = monitor.step(live, raise_alerts=False, progress=ticks(b))
    from lianxin.health.beats import monitor_beat

    # The engine's clock is the demo's: say so before the duty room opens.
    monitor_beat(monitor, report, time.monotonic() - began, 0, live)
    print(
        f"engine warmed up on {written:,} real readings "
        f"({(live - start).days} days x {feed.n} homes) in {time.monotonic() - began:.1f} s; "
        f"{len(report.findings)} findings of the warm-up not raised as alerts",
        flush=True,
    )


def _local(t, tz):
    from zoneinfo import ZoneInfo

    return t.astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M")


def _queued(findings) -> dict:
    """finding_id -> whether applying the raised finding opened or touched an alert."""
    from lianxin.alerts.models import AppliedFinding

    ids = [f.finding_id for f in findings if f.event == "raised"]
    if not ids:
        return {}
    rows = AppliedFinding.objects.filter(finding_id__in=ids, event="raised")
    return {fid: alert is not None for fid, alert in rows.values_list("finding_id", "alert_id")}


def _print_logins(users, password):
    print(f"logins (password for all: {password}):")
    for user in users:
        print(f"  {user.username:<10} {user.role}")
    sys.stdout.flush()
