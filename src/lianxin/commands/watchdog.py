"""`lianxin watchdog`: notice Lianxin's own failures from outside the monitor.

Runs the health checks once (for cron or a systemd timer) or every --every seconds (--loop, for
a systemd service), opening and clearing system alerts; each change is one line on stdout.
Exit code of a single run: 0 healthy, 1 when a system alert is open (so the timer's own status
shows it too)."""

import sys
import time


def add_arguments(parser):
    parser.add_argument("--loop", action="store_true", help="keep checking until stopped")
    parser.add_argument(
        "--every", type=float, default=30.0, help="seconds between checks with --loop"
    )


def run(args) -> int:
    from lianxin.web.setup import require_migrated, setup_django

    setup_django()
    require_migrated()
    from django.utils import translation

    from lianxin.health.checks import reconcile
    from lianxin.health.templatetags.health import span, system_alert_text

    translation.activate("en")  # the command line speaks English, as every other command
    while True:
        result = reconcile()
        for a in result.opened:
            print(f"raised {a.kind} {a.subject}: {system_alert_text(a)}", flush=True)
        for a in result.cleared:
            print(
                f"cleared {a.kind} {a.subject} after {span(a.duration.total_seconds())}",
                flush=True,
            )
        for f in result.failed:
            print(f"check failed: {f}", file=sys.stderr, flush=True)
        if not args.loop:
            return 0 if not result.open and not result.failed else 1
        time.sleep(args.every)
