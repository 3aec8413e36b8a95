"""`lianxin ingest`: the streamed and pushed meter data entry points.

lianxin ingest mqtt --host broker --port 1883 --topic 'lianxin/+/readings'
lianxin ingest token issue SOURCE [--note TEXT]     # prints the token once
lianxin ingest token list
lianxin ingest token revoke SOURCE
"""

import os
import signal
import socket
import sys
import threading


def add_arguments(parser):
    sub = parser.add_subparsers(dest="ingest_command", metavar="WHAT", required=True)

    mqtt = sub.add_parser(
        "mqtt",
        help="subscribe to an MQTT broker and store readings and meter events",
        description="Subscribe (QoS 1, persistent session) and store readings and meter events; "
        "each message is acknowledged only after it is durable. SIGTERM stops cleanly.",
    )
    mqtt.add_argument("--host", default="127.0.0.1", help="broker host (default %(default)s)")
    mqtt.add_argument("--port", type=int, default=1883, help="broker port (default %(default)s)")
    mqtt.add_argument(
        "--topic",
        action="append",
        dest="topics",
        metavar="PATTERN",
        help="topic pattern to subscribe to; repeat for several (default lianxin/+/readings "
        "and lianxin/+/events)",
    )
    mqtt.add_argument(
        "--client-id",
        default=f"lianxin-ingest-{socket.gethostname()}",
        help="MQTT client id; keep it fixed so the broker keeps the session while the "
        "subscriber restarts (default %(default)s)",
    )
    mqtt.add_argument("--username", help="broker user name")
    mqtt.add_argument(
        "--password-env",
        metavar="VAR",
        default="LIANXIN_MQTT_PASSWORD",
        help="environment variable holding the broker password (default %(default)s)",
    )
    mqtt.add_argument(
        "--batch-messages",
        type=int,
        default=500,
        help="write at most this many messages at once (default %(default)s)",
    )
    mqtt.add_argument(
        "--flush-ms",
        type=int,
        default=200,
        help="write a batch at the latest this long after its first message (default %(default)s)",
    )
    mqtt.add_argument(
        "--stats-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="print counts this often (default %(default)s)",
    )

    token = sub.add_parser("token", help="issue, list and revoke API tokens for the push API")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    issue = token_sub.add_parser("issue", help="create a token for a data source; shown once")
    issue.add_argument("source", help="name of the data source, e.g. meishan-hes")
    issue.add_argument("--note", default="", help="what the token is for")
    token_sub.add_parser("list", help="list tokens (never the secrets)")
    revoke = token_sub.add_parser("revoke", help="revoke a source's token")
    revoke.add_argument("source")


def run(args) -> int:
    from lianxin.web.setup import require_migrated, setup_django

    setup_django()
    require_migrated()
    if args.ingest_command == "mqtt":
        return _mqtt(args)
    return _token(args)


def _mqtt(args) -> int:
    from lianxin.errors import LianxinError
    from lianxin.ingest.api.intake import Intake
    from lianxin.ingest.mqtt import Subscriber

    if args.batch_messages < 1 or args.flush_ms < 0:
        raise LianxinError("--batch-messages must be at least 1 and --flush-ms not negative")

    def log(text):
        print(f"lianxin ingest mqtt: {text}", file=sys.stderr, flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    subscriber = Subscriber(
        host=args.host,
        port=args.port,
        topics=args.topics or ["lianxin/+/readings", "lianxin/+/events"],
        client_id=args.client_id,
        intake=Intake(),
        username=args.username,
        password=os.environ.get(args.password_env),
        batch_messages=args.batch_messages,
        flush_seconds=args.flush_ms / 1000,
        log=log,
    )
    log(f"connecting to {args.host}:{args.port} as {args.client_id}")
    subscriber.run(stop, stats_every=args.stats_every)
    log("stopped")
    return 0


def _token(args) -> int:
    from django.db import IntegrityError

    from lianxin.errors import LianxinError
    from lianxin.ingest.api.models import ApiToken

    if args.token_command == "issue":
        try:
            token, raw = ApiToken.issue(args.source, args.note)
        except IntegrityError:
            raise LianxinError(
                f"source {args.source!r} already has a token: revoke it and issue one under a new "
                "name, or use the admin"
            ) from None
        print(raw)
        print(
            f"token for {token.name} ({token.prefix}…): copy it now, it is not stored and will "
            "not be shown again; send it as 'Authorization: Bearer <token>'",
            file=sys.stderr,
        )
        return 0
    if args.token_command == "list":
        for t in ApiToken.objects.all():
            state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
            used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
            print(f"{t.name}\t{t.prefix}…\t{state}\tlast used {used}\t{t.note}")
        return 0
    token = ApiToken.objects.filter(name=args.source).first()
    if token is None:
        raise LianxinError(f"no token for source {args.source!r} (see `lianxin ingest token list`)")
    token.revoke()
    print(f"revoked the token of {token.name} ({token.prefix}…)")
    return 0
