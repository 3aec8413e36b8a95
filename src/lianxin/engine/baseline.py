"""The usual band of a home, for the duty-room chart: the range of energy per interval it shows
at this local time of day (weekdays and weekends apart), learned from its own history.

Pure: a frame of history in, a frame of (ts, low, high) out.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from lianxin.engine.inputs import InputError, epoch_seconds

HISTORY_DAYS = 28
MIN_DAYS = 3  # fewer days than this at a slot and the population prior is used
LOW_Q, HIGH_Q = 0.1, 0.9
# Population prior, kW by local hour: a generic household's usual range.
PRIOR_LOW_KW = [0.10] * 24
PRIOR_HIGH_KW = [0.4, 0.3, 0.3, 0.3, 0.3, 0.4, 0.8, 1.2, 1.2, 1.0, 1.0, 1.0,
                 1.2, 1.0, 1.0, 1.0, 1.2, 1.6, 2.0, 2.0, 1.6, 1.2, 0.8, 0.5]  # fmt: skip


def usual_band(history: pl.DataFrame, start: datetime, end: datetime, tz: str) -> pl.DataFrame:
    """Columns ts (UTC-aware, interval start), low, high (kWh per interval) for each interval
    from `start` to `end`, using only the home's readings before `start` (the last 28 days).

    history: ts (naive = local in tz, or aware), kwh; one home (household_id ignored if given).
    """
    for col in ("ts", "kwh"):
        if col not in history.columns:
            raise InputError(f"history: missing column {col!r}")
    start_s, end_s = _instant(start, tz), _instant(end, tz)
    h = history.select(
        start=epoch_seconds(history["ts"], tz, "history"), kwh=pl.col("kwh").cast(pl.Float64)
    ).sort("start")
    steps = h["start"].diff().drop_nulls()
    interval = int(steps.filter(steps > 0).mode().min()) if steps.len() else 1800
    interval = min(max(interval, 60), 3600)
    h = h.filter((pl.col("start") < start_s) & (pl.col("start") >= start_s - HISTORY_DAYS * 86400))
    grid = pl.DataFrame({"start": pl.int_range(start_s, end_s, interval, eager=True)})
    slot = _slot_expr(tz, interval)
    prof = (
        h.with_columns(slot)
        .group_by("slot", "weekend")
        .agg(
            low=pl.col("kwh").quantile(LOW_Q),
            high=pl.col("kwh").quantile(HIGH_Q),
            n=pl.len(),
        )
    )
    hours = interval / 3600
    prior = pl.DataFrame(
        {
            "hour": list(range(24)),
            "p_low": [v * hours for v in PRIOR_LOW_KW],
            "p_high": [v * hours for v in PRIOR_HIGH_KW],
        },  # fmt: skip
        schema={"hour": pl.Int8, "p_low": pl.Float64, "p_high": pl.Float64},
    )
    out = (
        grid.with_columns(slot)
        .join(prof, on=["slot", "weekend"], how="left")
        .join(prior, on="hour", how="left")
        .with_columns(
            ok=pl.col("n").fill_null(0) >= MIN_DAYS,
        )
        .select(
            ts=pl.from_epoch("start", "s").dt.replace_time_zone("UTC"),
            low=pl.when("ok").then("low").otherwise("p_low"),
            high=pl.when("ok").then("high").otherwise("p_high"),
        )
    )
    return out


def _slot_expr(tz: str, interval: int):
    local = pl.from_epoch("start", "s").dt.replace_time_zone("UTC").dt.convert_time_zone(tz)
    return [
        ((local.dt.hour().cast(pl.Int32) * 3600 + local.dt.minute().cast(pl.Int32) * 60)
         // interval).alias("slot"),
        (local.dt.weekday() >= 6).alias("weekend"),
        local.dt.hour().cast(pl.Int8).alias("hour"),
    ]  # fmt: skip


def _instant(value: datetime, tz: str) -> int:
    from zoneinfo import ZoneInfo

    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return int(value.timestamp())
