"""`lianxin spark replay` on a Spark cluster (or local[N]): the driver's side.

Stages (each a cogroup of the readings by shard with the shards' engine snapshots):

1. plan: every shard reports its clock and, for a fresh run, its homes' figures over the
   learning window; the driver makes the run's one clock (replay.shared_clock) and its one set
   of population priors (priors.combine over every home);
2. run: every shard replays on that clock with those priors pinned, and returns its findings
   and its engine snapshot; the driver writes them as Parquet.

Output folder (a local path, or an object-store URL such as s3a://bucket/run-2024-03):

    findings/    one row per finding event (shard.FINDING_SCHEMA)
    snapshots/   shard, engine clock, snapshot (the engine's state, numpy .npz bytes)
    run/         one row: shards, time zone, priors, clock, inputs (read by --continue-from)
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime

import polars as pl
import pyarrow as pa

from lianxin.engine.priors import Priors, combine, sample_step
from lianxin.engine.replay import shared_clock
from lianxin.errors import LianxinError
from lianxin.meterdata import epoch_seconds
from lianxin.spark import shard as sh

PLAN_SCHEMA = pa.schema(
    [
        ("shard", pa.int32()),
        ("first", pa.int64()),
        ("tick", pa.int64()),
        ("last", pa.int64()),
        ("readings", pa.int64()),
        ("key", pa.string()),
        ("sample", pa.int64()),
        ("qv", pa.list_(pa.float32())),
        ("qn", pa.list_(pa.int32())),
        ("hv", pa.list_(pa.float32())),
        ("hn", pa.list_(pa.int32())),
        ("sb", pa.float32()),
        ("sbn", pa.int32()),
        ("error", pa.string()),
    ]
)
RUN_SCHEMA = pa.schema(
    [
        ("finding_id", pa.string()),
        ("event", pa.string()),
        ("kind", pa.string()),
        ("severity", pa.string()),
        ("started_at", pa.timestamp("us", "UTC")),
        ("detected_at", pa.timestamp("us", "UTC")),
        ("household_id", pa.string()),
        ("transformer_area", pa.string()),
        ("households", pa.list_(pa.string())),
        ("evidence", pa.string()),
        ("reason_en", pa.string()),
        ("reason_zh", pa.string()),
        ("shard", pa.int32()),
        ("seq", pa.int64()),
        ("engine_now", pa.int64()),
        ("snapshot", pa.binary()),
        ("error", pa.string()),
    ]
)
_DDL = {pa.int32(): "int", pa.int64(): "bigint", pa.string(): "string", pa.float32(): "float",
        pa.binary(): "binary", pa.timestamp("us", "UTC"): "timestamp"}  # fmt: skip


def _ddl(schema: pa.Schema) -> str:
    """The Spark DDL of an Arrow schema (the types used here)."""

    def one(t):
        return f"array<{one(t.value_type)}>" if pa.types.is_list(t) else _DDL[t]

    return ", ".join(f"`{f.name}` {one(f.type)}" for f in schema)
QUANTITY = ("kwh", "quantity")
# What bad input makes the engine's checks (and polars, on a column of the wrong type) raise.
DATA_ERRORS = (LianxinError, ValueError, pl.exceptions.PolarsError)


def session(master: str | None = None, app: str = "lianxin spark replay"):
    """A SparkSession; `master` e.g. local[2] (spark-submit sets it on a cluster)."""
    from pyspark.sql import SparkSession

    # Local mode: the Python workers are this interpreter (with Lianxin installed), not
    # whatever python3 is first on PATH. spark-submit on a cluster sets its own.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    b = (
        SparkSession.builder.appName(app)
        .config("spark.sql.session.timeZone", "UTC")
        # Timestamps written as UTC instants (not INT96, which other readers take as naive).
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    )
    if not sys.stderr.isatty():  # no progress bars in logs and pipes
        b = b.config("spark.ui.showConsoleProgress", "false")
    if master:
        b = b.master(master)
        if master.startswith("local"):
            b = b.config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "8")
    return b.getOrCreate()


def _arrow(frame: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    cols = {}
    for f in schema:
        if f.name in frame.columns:
            s = frame[f.name]
            if isinstance(s.dtype, pl.Array):
                s = s.cast(pl.List(s.dtype.inner))
            cols[f.name] = s.to_arrow(compat_level=pl.CompatLevel.oldest())
        else:
            cols[f.name] = pa.nulls(frame.height, f.type)
    return pa.table(cols).cast(schema) if cols else schema.empty_table()


def _by_shard(frame: pl.DataFrame | None, areas: dict[str, str], shards: int) -> dict:
    """A side table (topology, events, payments, settings) split by the shard of its homes."""
    if frame is None or frame.height == 0:
        return {}
    hid = frame["household_id"].cast(pl.Utf8).to_list()
    keys = [sh.shard_of(areas.get(h), h, shards) for h in hid]
    frame = frame.with_columns(_shard=pl.Series(keys, dtype=pl.Int32))
    return {k[0]: g.drop("_shard") for k, g in frame.group_by("_shard")}


def read_store(
    spark, store: str, meters: pl.DataFrame, since: int | None = None, until: int | None = None
) -> tuple:
    """A data directory's datasets in the store's layout (lianxin.store: <store>/readings/
    day=YYYY-MM-DD/*.parquet, and events, payments, balances beside it), local or an
    object-store URL, as the engine's inputs. Corrections resolve as the store's readers do
    (per key, the value received last). Returns (readings, events, payments, unknown):
    readings a Spark frame (household_id, ts, quantity, meter_kind) of the interval units in
    their kind's base unit, summed per home over its meters (a 换表 pair included); events and
    payments polars frames (small: read whole on the driver) or None; unknown the number of
    interval readings of meters not in `meters` (counted, not judged, as the monitor does).
    Only the day partitions that may hold instants from `since` to `until` (epoch seconds) are
    read: a nightly run continued from last night's reads a day, not the whole history."""
    from pyspark.sql import functions as F

    from lianxin import meterdata
    from lianxin.store import BalancesStore, EventsStore, PaymentsStore, ReadingsStore

    root = store.rstrip("/")

    def latest(dataset, folder: str, required: bool):
        # Spark's reader, not lianxin.store's: the store may be an object-store URL.
        ddl = ", ".join(
            f"`{c}` {'double' if t == pl.Float64 else 'timestamp' if c == 'ts' else 'string'}"
            for c, t in dataset.schema.items()
        )
        days = _day_folders(spark, f"{root}/{folder}", since, until)
        if not days:
            if required:
                raise LianxinError(
                    f"--store {store}: no readings there ({root}/{folder}/day=YYYY-MM-DD/"
                    + (" in the period of this run)" if since or until else ")")
                )
            return None
        paths = [f"{day}/*.parquet" for day in days]
        df = spark.read.schema(f"{ddl}, `received_at` timestamp").parquet(*paths)
        values = [c for c in dataset.schema if c not in dataset.key]
        pick = F.max_by(F.struct(*values), "received_at").alias("_v")
        return df.groupBy(*dataset.key).agg(pick).select(*dataset.key, "_v.*")

    rd = latest(ReadingsStore, "readings", True)
    factors = {n: u.factor for n, u in meterdata.UNITS.items() if u.measure == "interval"}
    to_base = F.create_map(*[F.lit(x) for pair in factors.items() for x in pair])
    rd = rd.filter(F.col("unit").isin(list(factors))).select(
        "meter", "ts", (F.col("value") * to_base[F.col("unit")]).alias("quantity")
    )
    reg = meters.select("meter", "household_id", "meter_kind").unique("meter", keep="first")
    rd = rd.join(F.broadcast(spark.createDataFrame(reg.to_arrow())), "meter", "left")
    rd = rd.persist()
    unknown = rd.filter(F.col("household_id").isNull()).count()
    rd = rd.filter(F.col("household_id").isNotNull()).groupBy(
        "household_id", "meter_kind", "ts"
    ).agg(F.sum("quantity").alias("quantity"))

    def small(dataset, folder: str) -> pl.DataFrame:
        df = latest(dataset, folder, False)
        if df is None:
            return pl.DataFrame(schema={**dataset.schema, "ts": meterdata.UTC_US})
        return pl.from_arrow(df.toArrow()).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))

    events = meterdata.engine_events(small(EventsStore, "events"), meters)
    payments = meterdata.engine_payments(
        small(PaymentsStore, "payments"),
        small(BalancesStore, "balances"),
        meters,
        meterdata.accounts_of(meters),
    )
    return rd, (events if events.height else None), payments, unknown


def spark_replay(
    spark,
    readings: str | None,
    out: str,
    *,
    store: str | None = None,
    meters: pl.DataFrame | None = None,
    topology: pl.DataFrame | None = None,
    events: pl.DataFrame | None = None,
    payments: pl.DataFrame | None = None,
    settings: pl.DataFrame | None = None,
    shards: int | None = None,
    prior_days: int = 28,
    continue_from: str | None = None,
    until: datetime | None = None,
    tz: str,
) -> dict:
    """Run the replay; returns a summary (shards, homes, readings, findings by kind, clock)."""
    from pyspark.sql import functions as F

    if store is not None and topology is None and meters is not None:
        # The registry knows each home's transformer area.
        if "transformer_area" in meters.columns:
            topology = meters.select(
                "household_id", "transformer_area",
                *(["resolution_kwh"] if "resolution_kwh" in meters.columns else []),
            ).drop_nulls("transformer_area")  # fmt: skip
    previous = _manifest(spark, continue_from) if continue_from else None
    if previous:
        if shards and shards != previous["shards"]:
            raise LianxinError(
                f"--shards {shards}: the run continued from has {previous['shards']} shards "
                "(a home's snapshot lives in its shard)"
            )
        if previous.get("topology") and topology is None:
            raise LianxinError(
                "--topology is needed: the run continued from had one (homes are sharded by "
                "their transformer area, and their snapshots are in those shards)"
            )
        shards, tz = previous["shards"], previous["tz"]
        priors = Priors.from_json(previous["priors"])
    shards = shards or 64
    if _exists(spark, out):
        raise LianxinError(f"--out {out}: already exists (a run writes a new folder)")
    # One shuffle partition per shard: the cogroups below are one task each.
    spark.conf.set("spark.sql.shuffle.partitions", str(shards))
    until_s = int(until.timestamp()) if until is not None else None

    unknown = 0
    if store is not None:
        if meters is None:
            raise LianxinError("--store needs --meters (which meter is whose home)")
        since = int(previous["clock_last"]) if previous else None
        rd, events, payments, unknown = read_store(spark, store, meters, since, until_s)
        readings = store
    else:
        rd = spark.read.parquet(readings)
        missing = [c for c in ("household_id", "ts") if c not in rd.columns]
        qty = [c for c in QUANTITY if c in rd.columns]
        if missing or not qty:
            need = missing + ([] if qty else ["kwh or quantity"])
            raise LianxinError(f"{readings}: missing column(s) {', '.join(need)}")
        keep = ["household_id", "ts", qty[0]]
        keep += ["meter_kind"] if "meter_kind" in rd.columns else []
        rd = rd.select(*keep).withColumn("household_id", F.col("household_id").cast("string"))

    topo = topology.select(
        pl.col("household_id").cast(pl.Utf8), pl.col("transformer_area").cast(pl.Utf8),
        *([pl.col("resolution_kwh").cast(pl.Float64).max().over(pl.col("household_id"))]
          if "resolution_kwh" in topology.columns else []),
    ).unique("household_id", keep="first") if topology is not None else None  # fmt: skip
    areas = (
        dict(topo.select("household_id", "transformer_area").iter_rows())
        if topo is not None else {}
    )  # fmt: skip
    side = {
        name: _by_shard(frame, areas, shards)
        for name, frame in (
            ("topology", topo), ("events", events), ("payments", payments), ("settings", settings)
        )
    }  # fmt: skip
    if topo is not None and topo.height:
        areas_df = spark.createDataFrame(topo.select("household_id", "transformer_area").to_arrow())
        rd = rd.join(F.broadcast(areas_df), "household_id", "left")
    else:
        rd = rd.withColumn("transformer_area", F.lit(None).cast("string"))
    key = F.coalesce(F.col("transformer_area"), F.col("household_id")).cast("binary")
    rd = rd.withColumn("shard", (F.crc32(key) % shards).cast("int")).drop("transformer_area")

    if previous:
        snaps = spark.read.parquet(f"{continue_from.rstrip('/')}/snapshots").select(
            "shard", "snapshot"
        )
        learn_until = None
    else:
        snaps = spark.createDataFrame([], "shard int, snapshot binary")
        first = pl.from_arrow(rd.agg(F.min("ts").alias("ts")).toArrow())["ts"]
        if first.null_count():
            raise LianxinError(f"{readings}: no readings")
        learn_until = int(epoch_seconds(first, tz)[0]) + prior_days * 86400
    bc = spark.sparkContext.broadcast(side)

    def frames(shard: int) -> dict:
        return {name: parts.get(shard) for name, parts in bc.value.items()}

    def read_side(key, left: pa.Table, right: pa.Table):
        shard = int(key[0].as_py())
        r = pl.from_arrow(left).drop("shard") if left.num_rows else pl.DataFrame()
        r = sh.window(r, tz, until_s, inclusive=False) if r.height else r
        snap = right.column("snapshot")[0].as_py() if right.num_rows else None
        return shard, r, snap

    def plan(key, left, right):
        try:
            return _plan(key, left, right)
        except DATA_ERRORS as exc:  # the data's fault: said in one line
            return _arrow(_error_row(int(key[0].as_py()), exc), PLAN_SCHEMA)

    def _plan(key, left, right):
        shard, r, snap = read_side(key, left, right)
        f = frames(shard)
        clock, figures = sh.plan_shard(
            r if r.height else pl.DataFrame(),
            snapshot=snap,
            tz=tz,
            topology=f["topology"],
            events=sh.window(f["events"], tz, until_s, True, "events"),
            payments=sh.window(f["payments"], tz, until_s, True, "payments"),
            learn_until=learn_until,
        )
        head = pl.DataFrame(
            {
                "shard": [shard],
                "first": [clock[0] if clock else None],
                "tick": [clock[1] if clock else None],
                "last": [clock[2] if clock else None],
                "readings": [r.height],
                "sample": [0 if figures is None else figures.height],  # (rows, in a head)
            },
            schema={"shard": pl.Int32, "first": pl.Int64, "tick": pl.Int64, "last": pl.Int64,
                    "readings": pl.Int64, "sample": pl.Int64},  # fmt: skip
        )
        parts = [_arrow(head, PLAN_SCHEMA)]
        if figures is not None and figures.height:
            parts.append(_arrow(figures.with_columns(shard=pl.lit(shard, pl.Int32)), PLAN_SCHEMA))
        return pa.concat_tables(parts)

    grouped = rd.groupBy("shard").cogroup(snaps.groupBy("shard"))
    planned = grouped.applyInArrow(plan, _ddl(PLAN_SCHEMA)).persist()
    heads = pl.from_arrow(planned.filter(F.col("key").isNull()).drop(
        "key", "qv", "qn", "hv", "hn", "sb", "sbn").toArrow())  # fmt: skip
    _raise_errors(heads, readings)
    clocks = [c for c in heads.select("first", "tick", "last").iter_rows() if c[0] is not None]
    if not clocks:
        raise LianxinError(f"{readings}: no readings to replay" + (
            f" before {until.isoformat()}" if until else ""))  # fmt: skip
    clock = shared_clock(clocks)
    if until_s is not None and until_s >= clock[0]:
        # The run ends at `until` even where data ended before it: a later run continues there.
        clock = (clock[0], clock[1], until_s - (until_s - clock[0]) % clock[1])
    if not previous:
        figs = planned.filter(F.col("key").isNotNull())
        rows = int(heads["sample"].sum())
        step = sample_step(rows)
        kept = figs.filter(F.col("sample") % step == 0).drop(
            "first", "tick", "last", "readings", "error"
        )
        priors = combine([_figures(pl.from_arrow(kept.toArrow()))], rows=rows)
    planned.unpersist()

    def run(key, left, right):
        try:
            return _run(key, left, right)
        except DATA_ERRORS as exc:
            return _arrow(_error_row(int(key[0].as_py()), exc), RUN_SCHEMA)

    def _run(key, left, right):
        shard, r, snap = read_side(key, left, right)
        f = frames(shard)
        found, blob = sh.run_shard(
            r if r.height else pl.DataFrame(),
            shard=shard,
            snapshot=snap,
            priors=priors,
            clock=clock,
            tz=tz,
            topology=f["topology"],
            events=sh.window(f["events"], tz, until_s, True, "events"),
            payments=sh.window(f["payments"], tz, until_s, True, "payments"),
            settings=f["settings"],
        )
        snap_row = pl.DataFrame({"shard": [shard], "engine_now": [clock[2]]},
                                schema={"shard": pl.Int32, "engine_now": pl.Int64})  # fmt: skip
        snap_table = _arrow(snap_row, RUN_SCHEMA).set_column(
            RUN_SCHEMA.get_field_index("snapshot"), "snapshot", pa.array([blob], pa.binary())
        )
        return pa.concat_tables([_arrow(found, RUN_SCHEMA), snap_table])

    result = grouped.applyInArrow(run, _ddl(RUN_SCHEMA)).persist()
    failed = result.filter(F.col("error").isNotNull()).select("shard", "error").limit(1)
    _raise_errors(pl.from_arrow(failed.toArrow()), readings)
    out = out.rstrip("/")
    found = result.filter(F.col("snapshot").isNull()).drop("snapshot", "engine_now", "error")
    found.write.mode("errorifexists").parquet(f"{out}/findings")
    snaps_out = result.filter(F.col("snapshot").isNotNull())
    snaps_out.select("shard", "engine_now", "snapshot").write.mode("errorifexists").parquet(
        f"{out}/snapshots"
    )
    counts = pl.from_arrow(found.groupBy("kind", "event").count().toArrow())
    result.unpersist()
    total = int(counts["count"].sum()) if counts.height else 0
    counts = counts.filter(pl.col("event") == "raised").select("kind", "count")
    summary = {
        "shards": shards,
        "tz": tz,
        "priors": priors.to_json(),
        "clock_first": clock[0],
        "clock_tick": clock[1],
        "clock_last": clock[2],
        "readings": readings,
        "topology": topo is not None and topo.height > 0,
        "readings_replayed": int(heads["readings"].sum()),
        "unknown_meter_readings": unknown,
        "findings": total,
        "raised": json.dumps(dict(counts.sort("kind").iter_rows())),
        "continued_from": continue_from or "",
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    spark.createDataFrame(pa.Table.from_pylist([summary])).coalesce(1).write.mode(
        "errorifexists"
    ).parquet(f"{out}/run")
    return summary


def _error_row(shard: int, exc: Exception) -> pl.DataFrame:
    return pl.DataFrame({"shard": [shard], "error": [" ".join(str(exc).split())]},
                        schema={"shard": pl.Int32, "error": pl.String})  # fmt: skip


def _raise_errors(rows: pl.DataFrame, readings: str) -> None:
    bad = rows.filter(pl.col("error").is_not_null()) if "error" in rows.columns else rows[:0]
    if bad.height:
        shard, error = bad.row(0)[bad.columns.index("shard")], bad["error"][0]
        raise LianxinError(f"{readings} (shard {shard}, rows counted within it): {error}")


def _exists(spark, url: str) -> bool:
    """Whether a path exists, through Spark's own file systems (local, s3a://, hdfs://)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(url)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(path)


def _day_folders(spark, folder: str, since: int | None, until: int | None) -> list[str]:
    """A dataset's day=YYYY-MM-DD partitions (through Spark's file systems: local, s3a://,
    hdfs://) that may hold an instant from `since` to `until`, epoch seconds, both optional.
    Partitions are UTC days of the interval's start: a day's margin covers an interval that
    started the day before."""
    jvm = spark.sparkContext._jvm
    pattern = jvm.org.apache.hadoop.fs.Path(f"{folder}/day=*")
    fs = pattern.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    found = fs.globStatus(pattern) or []
    first = _utc_day(since - 86400) if since is not None else ""
    last = _utc_day(until) if until is not None else "9999"
    out = []
    for status in found:
        name = status.getPath().getName()
        if status.isDirectory() and first <= name.removeprefix("day=") <= last:
            out.append(status.getPath().toString())
    return sorted(out)


def _utc_day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).date().isoformat()


def _manifest(spark, folder: str) -> dict:
    path = f"{folder.rstrip('/')}/run"
    try:
        rows = pl.from_arrow(spark.read.parquet(path).toArrow()).to_dicts()
    except Exception as exc:  # noqa: BLE001 - Spark's AnalysisException: say which folder
        raise LianxinError(f"--continue-from {folder}: no run written there ({path})") from exc
    if len(rows) != 1:
        raise LianxinError(f"{path}: expected one row, found {len(rows)}")
    return rows[0]


def _figures(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        pl.col("qv", "hv").cast(pl.Array(pl.Float32, 24)),
        pl.col("qn", "hn").cast(pl.Array(pl.Int32, 24)),
    )
