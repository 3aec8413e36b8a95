"""Hand-made load curves: a home with a plain daily routine, in 30-minute kWh, naive local time."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

START = datetime(2026, 1, 5)  # a Monday
STANDBY = 0.06  # kWh per half hour: fridge and standby, about 120 W


def routine_day(rng: np.random.Generator) -> np.ndarray:
    """48 half-hour values: asleep 23:00-07:00, up at 07:00, out 09:30-11:00, evening at home."""
    v = np.full(48, STANDBY)
    wake = 14 + int(rng.integers(0, 2))  # 07:00 or 07:30
    v[wake : wake + 4] = 0.35  # kettle, lights, breakfast
    v[22:34] = 0.18  # lunch and afternoon at home
    v[34:46] = 0.45  # evening: cooking, TV, lights
    v[rng.integers(22, 46)] += 0.5  # some appliance, somewhere in the day
    return v + rng.uniform(0, 0.01, 48)


def home(hid: str, days: int, seed: int = 0, start: datetime = START) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    kwh = np.concatenate([routine_day(rng) for _ in range(days)])
    ts = [start + timedelta(minutes=30 * i) for i in range(days * 48)]
    return pl.DataFrame({"household_id": hid, "ts": ts, "kwh": kwh})


def at(day: int, hh: int, mm: int = 0, start: datetime = START) -> datetime:
    return start + timedelta(days=day, hours=hh, minutes=mm)


def edit(df: pl.DataFrame, hid: str, t0: datetime, t1: datetime, expr) -> pl.DataFrame:
    """Replace kwh of one home in [t0, t1) by expr (a polars expression over kwh)."""
    inside = (pl.col("household_id") == hid) & (pl.col("ts") >= t0) & (pl.col("ts") < t1)
    return df.with_columns(kwh=pl.when(inside).then(expr).otherwise(pl.col("kwh")))


def drop(df: pl.DataFrame, hid: str, t0: datetime, t1: datetime) -> pl.DataFrame:
    inside = (pl.col("household_id") == hid) & (pl.col("ts") >= t0) & (pl.col("ts") < t1)
    return df.filter(~inside)


def raised(findings, kind=None, hid=None):
    return [
        f
        for f in findings
        if f.event == "raised"
        and (kind is None or f.kind == kind)
        and (hid is None or f.household_id == hid)
    ]


def local(dt_utc, tz: str = "Asia/Shanghai") -> datetime:
    """A finding's UTC time as naive local time, to compare with the curves."""
    from zoneinfo import ZoneInfo

    return dt_utc.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
