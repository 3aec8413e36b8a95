"""`lianxin spark replay`: the engine over shards of homes as Apache Spark tasks.

Reads readings in `lianxin replay`'s long format from a Parquet file or folder (partitioned or
not: a local path, or an object-store URL such as s3a://bucket/readings/), shards the homes by
transformer area, and writes findings and per-shard engine snapshots to --out (see
lianxin.spark.job). `--continue-from` a previous --out goes on from its snapshots. Needs
pyspark (`uv sync --group spark`) and Java 17 or newer. `lianxin import-findings` turns the
findings into alerts.
"""

from lianxin.commands.replay import _read


def add_arguments(parser):
    sub = parser.add_subparsers(dest="spark_command", metavar="ACTION", required=True)
    p = sub.add_parser(
        "replay",
        help="replay recorded readings through the engine, sharded by transformer area",
        description="Replay recorded readings through the engine as Spark tasks, one engine per "
        "shard of whole transformer areas; findings identical to `lianxin replay` with the same "
        "pinned priors (--prior-days).",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--readings",
        help="Parquet file or folder (e.g. day=YYYY-MM-DD/ partitions), local or an object-store "
        "URL (s3a://...): household_id, ts, kwh or quantity, optional meter_kind",
    )
    source.add_argument(
        "--store",
        help="a data directory (LIANXIN_HOME, or a copy of it at an object-store URL): its "
        "readings, events, payments and balances as Lianxin stores them; needs --meters",
    )
    p.add_argument(
        "--meters",
        help="with --store: which meter is whose home, as `lianxin spark registry` writes it "
        "(Parquet or CSV: meter, household_id, meter_kind, optional transformer_area, account)",
    )
    p.add_argument("--out", required=True, help="output folder or URL (must not exist)")
    p.add_argument("--topology", help="CSV or Parquet: household_id, transformer_area")
    p.add_argument("--events", help="CSV or Parquet: household_id, ts, event")
    p.add_argument("--payments", help="CSV or Parquet: household_id, ts, amount and/or balance")
    p.add_argument(
        "--settings", help="CSV or Parquet: household_id, sensitivity, quiet hours, away"
    )
    p.add_argument(
        "--shards",
        type=_positive,
        help="number of shards (default 64; a continued run keeps its first run's)",
    )
    p.add_argument(
        "--prior-days",
        type=_positive,
        default=28,
        help="days from the first reading over which the population priors are learned once, "
        "over every home, and then pinned in every shard (default 28)",
    )
    p.add_argument("--continue-from", help="a previous --out: continue from its engine snapshots")
    p.add_argument(
        "--until",
        help="end the run at this instant (ISO 8601; naive = local time): readings that start "
        "before it; a later run continues from there",
    )
    p.add_argument("--tz", help="time zone of naive timestamps (default: LIANXIN_TIME_ZONE)")
    p.add_argument(
        "--master",
        help="Spark master, e.g. local[4] (default: spark-submit's; run directly: local[*])",
    )

    r = sub.add_parser(
        "registry",
        help="write the database's registry for a --store run",
        description="Write which meter is whose home (meters: meter, household_id, meter_kind, "
        "interval_s, transformer_area, account) and the residents' settings as Parquet, for "
        "`lianxin spark replay --store … --meters … --settings …` (Spark's tasks have no "
        "database).",
    )
    r.add_argument("--meters", required=True, help="Parquet file to write the meters to")
    r.add_argument("--settings", help="Parquet file to write the residents' settings to")


def _positive(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def run(args) -> int:
    if args.spark_command == "registry":
        return _registry(args)
    return _replay(args)


def _registry(args) -> int:
    from lianxin.care.registry import meters_frame, settings_frame
    from lianxin.web.setup import require_migrated, setup_django

    setup_django()
    require_migrated()
    meters = meters_frame()
    meters.write_parquet(args.meters)
    homes = meters["household_id"].n_unique()
    said = f"wrote {meters.height:,} meters of {homes:,} homes to {args.meters}"
    if args.settings:
        settings = settings_frame()
        settings.write_parquet(args.settings)
        said += f"; {settings.height:,} residents' settings to {args.settings}"
    print(said)
    return 0


def _replay(args) -> int:
    import json
    import time
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from lianxin.errors import LianxinError
    from lianxin.meterdata import deployment_zone

    try:
        from lianxin.spark.job import session, spark_replay
    except ImportError as exc:
        raise LianxinError(
            f"pyspark is not installed ({exc}): `uv sync --group spark` (and Java 17+)"
        ) from exc
    tz = args.tz or deployment_zone()
    until = None
    if args.until:
        try:
            until = datetime.fromisoformat(args.until)
        except ValueError as exc:
            raise LianxinError(f"--until {args.until!r} is not an ISO 8601 time") from exc
        if until.tzinfo is None:
            until = until.replace(tzinfo=ZoneInfo(tz))
    if args.store and not args.meters:
        raise LianxinError("--store needs --meters (`lianxin spark registry --meters FILE`)")
    if args.meters and not args.store:
        raise LianxinError("--meters goes with --store (--readings name their households)")
    if args.store and (args.events or args.payments):
        raise LianxinError("--store brings its own events and payments: drop --events/--payments")
    frames = {
        name: _read(getattr(args, name), name)
        for name in ("topology", "events", "payments", "settings", "meters")
        if getattr(args, name)
    }
    t0 = time.perf_counter()
    spark = session(args.master)
    try:
        summary = spark_replay(
            spark,
            args.readings,
            args.out,
            store=args.store,
            shards=args.shards,
            prior_days=args.prior_days,
            continue_from=args.continue_from,
            until=until,
            tz=tz,
            **frames,
        )
    except Exception as exc:
        if type(exc).__module__.startswith(("pyspark", "py4j")):
            raise LianxinError(_spark_error(exc)) from exc
        raise
    finally:
        spark.stop()
    raised = json.loads(summary["raised"])
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(raised.items())) or "none"
    print(
        f"replayed {summary['readings_replayed']:,} readings in {summary['shards']} shards in "
        f"{time.perf_counter() - t0:.1f} s; findings raised: {kinds}; wrote {args.out}"
    )
    if summary["unknown_meter_readings"]:
        print(
            f"not judged: {summary['unknown_meter_readings']:,} readings of meters not in "
            f"{args.meters} (not registered to a home)"
        )
    return 0


def _spark_error(exc: Exception) -> str:
    """A Spark failure in one line: the file and the reason when a file could not be read (a
    damaged file in a store copy), else the first line of Spark's message, not its JVM stack."""
    import re

    text = str(exc)
    unreadable = re.search(r"error while reading file (\S+?)\.?\s", text)
    if unreadable:
        cause = re.search(r"Caused by: [\w.$]+: ([^\n]+)", text)
        reason = cause.group(1).strip() if cause else "unreadable"
        return (
            f"cannot read {unreadable.group(1)}: {reason} (on the data directory itself, "
            "`lianxin store check --repair` sets damaged files aside)"
        )
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return f"Spark: {first[:400]}"
