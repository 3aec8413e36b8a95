"""One shard's work, without Spark: what each Spark task runs on the homes of its shard.

A shard is a set of whole transformer areas (a grid outage is judged with all the homes of its
area), chosen by a hash of the area's name, so a home stays in the same shard from one run to
the next and a run can continue from the shard's engine snapshot. Homes without an area are
spread by a hash of their household_id.

Two steps per run, each a function of the shard's own data:

- plan_shard: the shard's clock (first tick, tick seconds, last tick) and, for a fresh run, the
  figures its homes learned over the learning window (lianxin.engine.priors);
- run_shard: the replay on the run's one shared clock, with the run's one set of priors pinned;
  returns the findings and the engine's snapshot.

Nothing here imports pyspark or Django: lianxin.spark.job hands Arrow tables in and out.
"""

from __future__ import annotations

import json
import zlib

import numpy as np
import polars as pl

from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.findings import Finding
from lianxin.engine.inputs import epoch_seconds
from lianxin.engine.priors import Priors, learn_figures
from lianxin.engine.replay import replay, replay_clock

# The findings table: one row per finding event (as `lianxin replay` writes one JSON line).
FINDING_SCHEMA = {
    "finding_id": pl.String,
    "event": pl.String,
    "kind": pl.String,
    "severity": pl.String,
    "started_at": pl.Datetime("us", "UTC"),
    "detected_at": pl.Datetime("us", "UTC"),
    "household_id": pl.String,
    "transformer_area": pl.String,
    "households": pl.List(pl.String),
    "evidence": pl.String,  # JSON object
    "reason_en": pl.String,
    "reason_zh": pl.String,
    "shard": pl.Int32,
    "seq": pl.Int64,  # detection order within the shard
}


def shard_of(area: str | None, household_id: str, shards: int) -> int:
    """The shard of a home: by its area's name, else its own id (CRC-32, as Spark's crc32)."""
    key = area if area is not None else household_id
    return zlib.crc32(key.encode()) % shards


def engine_for(snapshot: bytes | None, priors: Priors, tz: str) -> Engine:
    """The shard's engine: restored from its snapshot (its priors pinned in it), or fresh with
    the run's priors pinned."""
    if snapshot:
        return Engine.restore(snapshot)
    eng = Engine(EngineConfig(tz=tz))
    eng.pin_priors(*priors.values())
    return eng


def _unjudged(readings: pl.DataFrame, eng: Engine) -> pl.DataFrame:
    """A restored engine judges only readings that end after its clock: drop those that start
    more than a day before it (a folder may hold the whole history), keep a day's margin for
    long intervals."""
    if eng.now is None or readings.height == 0:
        return readings
    start = epoch_seconds(readings["ts"], eng.cfg.tz, "readings").to_numpy()
    return readings.filter(pl.Series(start >= eng.now - 86400))


def window(frame: pl.DataFrame | None, tz: str, until: int | None, inclusive: bool,
           table: str = "readings"):  # fmt: skip
    """Rows whose ts is before `until` (or at it, inclusive): a run that ends there. ts as
    the engine reads it (text from a CSV, naive = local time in tz)."""
    if frame is None or until is None or frame.height == 0:
        return frame
    t = epoch_seconds(frame["ts"], tz, table).to_numpy()
    return frame.filter(pl.Series(t <= until if inclusive else t < until))


def plan_shard(
    readings: pl.DataFrame,
    *,
    snapshot: bytes | None,
    tz: str,
    topology: pl.DataFrame | None = None,
    events: pl.DataFrame | None = None,
    payments: pl.DataFrame | None = None,
    learn_until: int | None = None,
) -> tuple[tuple[int, int, int] | None, pl.DataFrame | None]:
    """The shard's clock (None if it has no readings to replay) and, with learn_until, the
    figures of its homes learned over the readings that start before it."""
    clock = None
    eng = engine_for(snapshot, Priors.default(), tz)
    readings = _unjudged(readings, eng)
    if readings.height:
        clock = replay_clock(
            readings, topology=topology, events=events, payments=payments, engine=eng
        )
    figures = None
    if learn_until is not None and readings.height:
        figures = learn_figures(readings, learn_until, EngineConfig(tz=tz))
    return clock, figures


def run_shard(
    readings: pl.DataFrame,
    *,
    shard: int,
    snapshot: bytes | None,
    priors: Priors,
    clock: tuple[int, int, int],
    tz: str,
    topology: pl.DataFrame | None = None,
    events: pl.DataFrame | None = None,
    payments: pl.DataFrame | None = None,
    settings: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, bytes]:
    """Replay the shard on the run's clock; its findings (FINDING_SCHEMA) and snapshot."""
    eng = engine_for(snapshot, priors, tz)
    readings = _unjudged(readings, eng)
    if readings.height:
        if settings is not None and settings.height:
            known = set(readings["household_id"].cast(pl.Utf8).unique().to_list())
            settings = settings.filter(pl.col("household_id").cast(pl.Utf8).is_in(list(known)))
        findings = replay(
            readings,
            topology=topology,
            events=events,
            payments=payments,
            settings=settings,
            engine=eng,
            clock=clock,
        )
    else:
        findings = _idle(eng, clock)
    return findings_frame(findings, shard), eng.snapshot()


def _idle(eng: Engine, clock: tuple[int, int, int]) -> list[Finding]:
    """The ticks of a shard with no new readings: its homes fall silent on the shared clock."""
    if eng.n == 0:
        return []
    first, tick, last = clock
    start = first if eng.now is None else max(first, eng.now + tick)
    start += (first - start) % tick
    has = np.zeros(eng.n, bool)
    kw = np.full(eng.n, np.nan, np.float32)
    out: list[Finding] = []
    for now in range(start, last + 1, tick):
        out += eng.tick(now, has, kw)
    return out


def findings_frame(findings: list[Finding], shard: int) -> pl.DataFrame:
    rows = [f.to_dict() for f in findings]
    for i, r in enumerate(rows):
        r["evidence"] = json.dumps(r["evidence"], ensure_ascii=False, sort_keys=True)
        r["shard"], r["seq"] = shard, i
    frame = pl.DataFrame(rows, schema={**FINDING_SCHEMA, "started_at": pl.String,
                                       "detected_at": pl.String})  # fmt: skip
    return frame.with_columns(
        pl.col("started_at", "detected_at").str.to_datetime(time_zone="UTC", time_unit="us")
    ).select(list(FINDING_SCHEMA))


def findings_of(frame: pl.DataFrame) -> list[Finding]:
    """The findings of a findings table, in detection order (detected_at, then shard order)."""
    for c in ("started_at", "detected_at"):
        if frame[c].dtype.time_zone is None:  # (written by another tool as naive UTC)
            frame = frame.with_columns(pl.col(c).dt.replace_time_zone("UTC"))
    frame = frame.sort("detected_at", "shard", "seq").drop("shard", "seq")
    return [
        Finding.from_dict({**r, "evidence": json.loads(r["evidence"] or "{}")})
        for r in frame.iter_rows(named=True)
    ]
