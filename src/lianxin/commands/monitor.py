"""`lianxin monitor`: the long-running loop store -> engine -> alerts (one per data directory)."""

import signal
import sys
import time
from datetime import timedelta


def add_arguments(parser):
    parser.add_argument(
        "--every", type=float, default=60.0, help="seconds between steps (default %(default)s)"
    )
    parser.add_argument("--once", action="store_true", help="run one step and exit")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="after new data rings the doorbell, wait this long for the rest of its batch "
        "before stepping (default %(default)s). The monitor steps at once on new data, rather "
        "than at its --every timer, when --lateness is shorter than --every (e.g. --lateness 0 "
        "for meters that push each reading as its interval ends: reading to alert in a "
        "second or two); with a longer lateness new data cannot be judged sooner anyway",
    )
    parser.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=10.0,
        help="write the whole engine state this often (default %(default)s); every step in "
        "between is kept as a small journal record, so a restart loses nothing",
    )
    parser.add_argument(
        "--lateness",
        type=float,
        default=5.0,
        metavar="MINUTES",
        help="how long after an interval ends its reading may still arrive and be judged: the "
        "engine trails the clock by this much (default %(default)s; e.g. 240 for meter data "
        "collected in batches every few hours)",
    )
    parser.add_argument(
        "--history-days",
        type=int,
        default=28,
        help="on a first start, learn from this many days of stored readings",
    )


def run(args) -> int:
    if not 0 <= args.lateness <= 7 * 24 * 60:
        print(
            f"lianxin monitor: --lateness {args.lateness:g} is not 0..10080 minutes",
            file=sys.stderr,
        )
        return 2
    from lianxin.web.setup import require_migrated, setup_django

    setup_django()
    require_migrated()
    from django.conf import settings

    from lianxin.health.beats import monitor_beat
    from lianxin.health.checks import reconcile
    from lianxin.monitor import Monitor
    from lianxin.store.wake import Doorbell

    monitor = Monitor(
        settings.LIANXIN_HOME,
        settings.TIME_ZONE,
        history_days=args.history_days,
        lateness=timedelta(minutes=args.lateness),
        checkpoint_every=timedelta(minutes=args.checkpoint_minutes),
    )
    # Opened before the first step: what is stored while it runs rings for the next one.
    doorbell = Doorbell(settings.LIANXIN_HOME)
    wake_on_data = args.lateness * 60 < args.every
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    from lianxin.notify.worker import start_thread

    # Notifications and escalation run beside the loop (`lianxin notify-worker` runs them alone).
    _worker, stop_worker = start_thread(out=sys.stdout)
    while True:
        began = time.perf_counter()
        try:
            report = monitor.step()
        except Exception as exc:  # noqa: BLE001 - a failed step is retried; the watch goes on
            # Nothing of the step was saved, so the next step judges the same data again; no
            # heartbeat is written, so a step failing for good shows as a stalled monitor.
            print(
                f"lianxin monitor: step failed, retried next step: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:300]}",
                file=sys.stderr,
                flush=True,
            )
            if args.once:
                stop_worker.set()
                monitor.close()
                return 1
        else:
            # The heartbeat others watch for; then this process checks the rest of Lianxin too.
            try:
                monitor_beat(monitor, report, time.perf_counter() - began, every=args.every)
                reconcile()
            except Exception as exc:  # noqa: BLE001 - a missed beat must not stop the monitor
                print(
                    f"could not write the heartbeat: {type(exc).__name__}: {exc}", file=sys.stderr
                )
            print(
                f"{report.now:%Y-%m-%d %H:%M:%S}Z judged to {report.judged_to:%H:%M:%S}Z "
                f"readings {report.readings} events {report.events} "
                f"findings {len(report.findings)} alerts {report.alerts}"
                + (f" unknown meters {report.unknown_meters}" if report.unknown_meters else "")
                + (f" skipped findings {len(report.skipped)}" if report.skipped else ""),
                flush=True,
            )
            for finding, reason in report.skipped:
                print(f"  skipped {finding.kind} {finding.subject}: {reason}", flush=True)
        if args.once or stopping:
            break
        # Until the timer, or until a writer rings: new readings are judged as they arrive. A
        # reading is judgeable once its interval is `lateness` old, so with a lateness longer
        # than the timer a ring could only start a step that finds nothing new to judge.
        deadline = time.monotonic() + args.every
        while not stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if doorbell.wait(min(1.0, left)) and wake_on_data:
                # Let the rest of the batch land (an HTTP client sends many requests).
                time.sleep(min(args.settle, max(deadline - time.monotonic(), 0)))
                doorbell.drain()
                break
        if stopping:
            break
    stop_worker.set()
    doorbell.close()
    monitor.close()
    print("monitor stopped", file=sys.stderr)
    return 0
