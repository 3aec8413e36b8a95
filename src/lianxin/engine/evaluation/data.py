"""Real household readings for the evaluation: normalise, choose homes, put on the engine's
clock. (Reading the file is the command's job: the engine does no I/O.)

Inside the evaluation every time is naive UTC (`ts` = start of the interval). The frames handed
to the engine carry the same instants marked as UTC (a naive time would mean local time there).
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from lianxin.errors import LianxinError


def readings_from_frame(df: pl.DataFrame, source: str) -> pl.DataFrame:
    """Real readings (as read from `source`) -> (household_id, ts UTC naive, kwh).

    Takes either `kwh` per interval (LCL: `ts` is treated as UTC, see its README) or `kw`
    averaged over a regular interval (UCI 1-minute set: energy = kw * interval hours). Rows with
    no value are dropped: in these sets a null means "no data", never zero.
    """
    for column in ("household_id", "ts"):
        if column not in df.columns:
            raise LianxinError(f"{source}: column {column!r} is missing (have {df.columns})")
    if "kwh" not in df.columns and "kw" not in df.columns:
        raise LianxinError(f"{source}: needs a column 'kwh' (energy per interval) or 'kw'")
    if not isinstance(df.schema["ts"], pl.Datetime):
        raise LianxinError(f"{source}: column 'ts' must be a timestamp, not {df.schema['ts']}")
    df = df.with_columns(pl.col("household_id").cast(pl.String))
    if df.schema["ts"].time_zone is not None:
        df = df.with_columns(pl.col("ts").dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    df = df.with_columns(pl.col("ts").dt.cast_time_unit("us"))
    if "kwh" in df.columns:
        df = df.select("household_id", "ts", pl.col("kwh").cast(pl.Float64))
    else:
        df = df.select("household_id", "ts", pl.col("kw").cast(pl.Float64)).sort(
            "household_id", "ts"
        )
        step_h = infer_intervals(df).select(
            "household_id", (pl.col("interval").dt.total_seconds() / 3600).alias("step_h")
        )
        df = df.join(step_h, on="household_id").select(
            "household_id", "ts", (pl.col("kw") * pl.col("step_h")).alias("kwh")
        )
    df = df.filter(pl.col("kwh").is_not_null() & pl.col("kwh").is_not_nan())
    bad = df.filter(pl.col("kwh") < 0)
    if bad.height:
        row = bad.row(0, named=True)
        raise LianxinError(
            f"{source}: household {row['household_id']} at {row['ts']}: "
            f"kwh {row['kwh']} is negative"
        )
    df = df.unique(keep="first")
    twice = df.filter(pl.struct("household_id", "ts").is_duplicated())
    if twice.height:
        row = twice.row(0, named=True)
        raise LianxinError(
            f"{source}: household {row['household_id']} has two different kwh values at {row['ts']}"
        )
    return df.sort("household_id", "ts")


def infer_intervals(readings: pl.DataFrame) -> pl.DataFrame:
    """Each home's reading interval: the most common step between consecutive readings."""
    steps = (
        readings.sort("household_id", "ts")
        .with_columns(step=pl.col("ts").diff().over("household_id"))
        .drop_nulls("step")
        .filter(pl.col("step") > timedelta(0))
    )
    return (
        steps.group_by("household_id", "step")
        .len()
        .sort("household_id", "len", "step", descending=[False, True, False])
        .group_by("household_id", maintain_order=True)
        .first()
        .select("household_id", pl.col("step").alias("interval"))
    )


def choose_homes(readings: pl.DataFrame, homes: int | None, seed: int) -> pl.DataFrame:
    """A seeded choice of `homes` households (all of them when None or more than there are)."""
    ids = readings.get_column("household_id").unique().sort()
    if homes is not None and homes < ids.len():
        ids = ids.sample(homes, seed=seed).sort()
    return readings.filter(pl.col("household_id").is_in(ids.implode()))


def clip_weeks(readings: pl.DataFrame, weeks: float | None) -> pl.DataFrame:
    """Keep only the first `weeks` weeks of the data (for --quick runs)."""
    if weeks is None:
        return readings
    end = readings.get_column("ts").min() + timedelta(weeks=weeks)
    return readings.filter(pl.col("ts") < end)


def utc_instants(frame: pl.DataFrame, column: str = "ts") -> pl.DataFrame:
    """Naive UTC -> timezone-aware UTC instants (the replay contract: naive would mean local)."""
    return frame.with_columns(pl.col(column).dt.replace_time_zone("UTC"))
