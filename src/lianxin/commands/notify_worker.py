"""`lianxin notify-worker`: send the outbox and run escalation steps (see lianxin.notify.worker).

`lianxin demo` and `lianxin monitor` run the same loop in a thread; run this on its own when
the monitor runs elsewhere or when you want notifications in their own process.
"""

import signal
import sys
import threading


def add_arguments(parser):
    parser.add_argument(
        "--every", type=float, default=0.5, help="seconds between passes (default %(default)s)"
    )
    parser.add_argument("--once", action="store_true", help="run one pass and exit")


def run(args) -> int:
    if not 0.05 <= args.every <= 3600:
        print(f"lianxin notify-worker: --every {args.every:g} is not 0.05..3600", file=sys.stderr)
        return 2
    from lianxin.web.setup import require_migrated, setup_django

    setup_django()
    require_migrated()
    from lianxin.notify import worker

    if args.once:
        r = worker.run_once()
        print(
            f"sent {r.sent} failed {r.failed} retrying {r.retried} held {r.deferred} "
            f"cancelled {r.cancelled} escalation rows {r.escalated}"
        )
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    print("notify worker running; Ctrl-C stops", flush=True)
    worker.loop(stop, every=args.every, out=sys.stdout)
    print("notify worker stopped", file=sys.stderr)
    return 0
