"""The household chart's data: a home's load over the last 48 h / 7 d / 30 d, its usual band,
the alert's start, and data freshness (the time of the latest reading)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from django.conf import settings
from django.utils import timezone

from lianxin import meterdata
from lianxin.care.models import with_replaced
from lianxin.store import ReadingsStore

log = logging.getLogger(__name__)

RANGES = {"48h": timedelta(hours=48), "7d": timedelta(days=7), "30d": timedelta(days=30)}
# The usual band is learned from this much history before the window.
BAND_HISTORY = timedelta(days=28)


def readings_store() -> ReadingsStore:
    return ReadingsStore(Path(settings.LIANXIN_HOME) / "readings")


def _wall_ms(col: str, tz: str) -> pl.Expr:
    # The chart runs with useUTC: it is given local wall-clock times of the deployment's zone,
    # so it shows deployment time whatever the browser's own time zone is.
    return pl.col(col).dt.convert_time_zone(tz).dt.replace_time_zone(None).dt.epoch("ms")


def _to_kw(df: pl.DataFrame, interval_minutes: dict[str, int]) -> pl.DataFrame:
    """Average load in kW per interval: the interval energy the engine judges (kWh, Wh: the
    contract's interval units, lianxin.meterdata) over the meter's interval."""
    df = meterdata.interval_quantities(df)
    if df.height == 0:
        return pl.DataFrame(schema={"ts": pl.Datetime("us", "UTC"), "kw": pl.Float64})
    hours = pl.col("meter").replace_strict(
        {m: v / 60 for m, v in interval_minutes.items()}, default=0.25, return_dtype=pl.Float64
    )
    kw = df.select("meter", "ts", kw=pl.col(meterdata.QUANTITY) / hours)
    return kw.group_by("ts").agg(pl.col("kw").sum()).sort("ts")


def latest_reading(meters: list[str], now: datetime) -> datetime | None:
    store = readings_store()
    # Look back a little first: the usual case is a home reporting every 15 minutes.
    for back in (timedelta(days=2), timedelta(days=40), None):
        df = store.read(meters, start=None if back is None else now - back, end=None)
        if df.height:
            return df["ts"].max()
    return None


def load_chart(household, range_key: str, alert=None, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    span = RANGES[range_key]
    tz = settings.TIME_ZONE
    meters = dict(
        with_replaced(household.meters.filter(kind="electricity")).values_list(
            "number", "interval_minutes"
        )
    )
    latest = latest_reading(list(meters), now) if meters else None
    end = now
    if latest is not None and (latest < now - span or latest > now):
        # Data that stopped long ago, or a replay running ahead of the wall clock: end the
        # window at the latest reading rather than show an empty chart.
        end = latest + timedelta(hours=1)
    start = end - span
    store = readings_store()
    raw = store.read(list(meters), start=start - BAND_HISTORY, end=end) if meters else None
    series = band = None
    if raw is not None and raw.height:
        window = raw.filter(pl.col("ts") >= start)
        series = _to_kw(window, meters)
        band = _band(raw, meters, start, end, tz)
    if series is not None and range_key in AGGREGATE:
        # A month of quarter-hours is 2,880 points on ~1,000 pixels: hourly means read better,
        # and leave the band visible between them.
        series, band = _hourly(series, band)
    water = _water(household, start, end, tz, range_key)
    marks = []
    if alert is not None:
        marks.append(
            {"at": _wall(alert.started_at, tz), "label": alert.get_kind_display(), "this": True}
        )
    # The home's earlier alerts in the window, marked too: a pattern shows (a third no-power
    # evening in a week).
    earlier = household.alerts.filter(started_at__gte=start, started_at__lte=end)
    if alert is not None:
        earlier = earlier.exclude(pk=alert.pk)
    for a in earlier.order_by("started_at")[:50]:
        marks.append(
            {
                "at": _wall(a.started_at, tz),
                "label": f"{a.get_kind_display()} {timezone.localtime(a.started_at):%m-%d %H:%M}",
                "this": False,
                "id": a.pk,
            }
        )
    return {
        "range": range_key,
        "unit": "kW",
        "time_zone": tz,
        "start": _wall(start, tz),
        "end": _wall(end, tz),
        "load": []
        if series is None
        else series.select(_wall_ms("ts", tz), pl.col("kw").round(3)).rows(),
        "band": [] if band is None else band,
        # Water meters: litres an hour (a tap left running, or no water used all day).
        "water": water,
        "water_unit": "L/h",
        "marks": marks,
        "latest_reading": latest.isoformat() if latest else None,
        # Shown as is: the deployment's time zone, whatever the browser's.
        "latest_reading_local": timezone.localtime(latest).strftime("%Y-%m-%d %H:%M")
        if latest
        else None,
    }


AGGREGATE = {"30d"}


def _hourly(series: pl.DataFrame, band: list | None):
    hourly = series.sort("ts").group_by_dynamic("ts", every="1h").agg(pl.col("kw").mean())
    if band:
        frame = pl.DataFrame(band, schema=["ms", "low", "high"], orient="row")
        frame = (
            frame.with_columns(ms=(pl.col("ms") // 3_600_000) * 3_600_000)
            .group_by("ms")
            .agg(pl.col("low").mean().round(3), pl.col("high").mean().round(3))
            .sort("ms")
        )
        band = frame.rows()
    return hourly, band


def _water(household, start, end, tz, range_key) -> list:
    """The home's water meters over the window in L/h (hourly means on the 30-day view)."""
    meters = dict(
        household.meters.filter(kind="water", active=True).values_list("number", "interval_minutes")
    )
    if not meters:
        return []
    raw = readings_store().read(list(meters), start=start, end=end)
    if not raw.height:
        return []
    df = meterdata.interval_quantities(raw)
    if not df.height:
        return []
    hours = pl.col("meter").replace_strict(
        {m: v / 60 for m, v in meters.items()}, default=0.25, return_dtype=pl.Float64
    )
    flow = (
        df.select("ts", lph=pl.col(meterdata.QUANTITY) * 1000 / hours)
        .group_by("ts")
        .agg(pl.col("lph").sum())
        .sort("ts")
    )
    if range_key in AGGREGATE:
        flow = flow.group_by_dynamic("ts", every="1h").agg(pl.col("lph").mean())
    return flow.select(_wall_ms("ts", tz), pl.col("lph").round(1)).rows()


def _band(raw: pl.DataFrame, meters: dict[str, int], start, end, tz) -> list | None:
    """The home's usual band in kW, from its own interval kWh before `start`."""
    from lianxin.engine.baseline import usual_band
    from lianxin.engine.inputs import InputError

    history = (
        meterdata.interval_quantities(raw)
        .group_by("ts")
        .agg(kwh=pl.col(meterdata.QUANTITY).sum())
        .sort("ts")
    )
    if history.height == 0:
        return None
    try:
        band = usual_band(history, start, end, tz)
    except InputError as exc:
        log.warning("no usual band for meters %s: %s", list(meters), exc)
        return None
    if band.height < 2:
        return None
    hours = (band["ts"][1] - band["ts"][0]).total_seconds() / 3600
    return band.select(
        _wall_ms("ts", tz), (pl.col("low") / hours).round(3), (pl.col("high") / hours).round(3)
    ).rows()


def _wall(t: datetime, tz: str) -> int:
    local = t.astimezone(ZoneInfo(tz)).replace(tzinfo=UTC)
    return int(local.timestamp() * 1000)
