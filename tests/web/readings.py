"""Real load curves for a demo home: a London household from the committed LCL sample, moved
to the deployment's time zone (same wall-clock routine) and to end now."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from django.conf import settings

from lianxin.store import ReadingsStore

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "lcl_sample.parquet"


def write_real_curve(meter, *, lcl_id="MAC000002", days=10, power_lost_at=None, now=None):
    """Write `days` of half-hourly kWh for `meter` ending at `now`; zeros from power_lost_at.
    The meter is set to a 30-minute interval to match the data."""
    now = now or datetime.now(UTC)
    meter.interval_minutes = 30
    meter.save(update_fields=["interval_minutes"])
    df = pl.read_parquet(SAMPLE).filter(pl.col("household_id") == lcl_id).sort("ts")
    last = df["ts"].max()
    # London winter time is UTC; Asia/Shanghai is UTC+8: subtract 8 h to keep the wall clock,
    # then move whole days so the sample runs past now; what lies after now is dropped.
    end = now.replace(tzinfo=None, second=0, microsecond=0)
    shift_days = (end - (last - timedelta(hours=8))).days + 1
    shift = timedelta(days=shift_days) - timedelta(hours=8)
    df = (
        df.with_columns(ts=(pl.col("ts") + shift).dt.replace_time_zone("UTC"))
        .filter(pl.col("ts") > now - timedelta(days=days), pl.col("ts") <= now)
        .select(meter=pl.lit(meter.number), ts="ts", value="kwh", unit=pl.lit("kWh"))
    )
    if power_lost_at is not None:
        df = df.with_columns(
            value=pl.when(pl.col("ts") >= power_lost_at).then(0.0).otherwise(pl.col("value"))
        )
    ReadingsStore(Path(settings.LIANXIN_HOME) / "readings").write(df)
    return df
