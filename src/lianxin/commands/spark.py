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
    p.add_argument(
        "--readings",
        required=True,
        help="Parquet file or folder (e.g. day=YYYY-MM-DD/ partitions), local or an object-store "
        "URL (s3a://...): household_id, ts, kwh or quantity, optional meter_kind",
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
    frames = {
        name: _read(getattr(args, name), name)
        for name in ("topology", "events", "payments", "settings")
        if getattr(args, name)
    }
    t0 = time.perf_counter()
    spark = session(args.master)
    try:
        summary = spark_replay(
            spark,
            args.readings,
            args.out,
            shards=args.shards,
            prior_days=args.prior_days,
            continue_from=args.continue_from,
            until=until,
            tz=tz,
            **frames,
        )
    finally:
        spark.stop()
    raised = json.loads(summary["raised"])
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(raised.items())) or "none"
    print(
        f"replayed {summary['readings_replayed']:,} readings in {summary['shards']} shards in "
        f"{time.perf_counter() - t0:.1f} s; findings raised: {kinds}; wrote {args.out}"
    )
    return 0
