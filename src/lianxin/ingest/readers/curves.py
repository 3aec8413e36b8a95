"""96-point load curves (96点负荷曲线): one row per meter and day, wide -> one reading per
quarter-hour."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from lianxin.ingest.readers.common import (
    _REGISTRATION,
    REJECTION_SCHEMA,
    Batch,
    _check_values,
    _concat,
    _local_to_utc,
    _parse_date,
    _reject,
    _required,
)
from lianxin.meterdata import EARLIEST

if TYPE_CHECKING:
    from lianxin.ingest.readers.source import Source


def read(src: Source, chunk: pl.DataFrame, now: datetime) -> Batch:
    rej = []
    ok = _required(chunk, "meter", rej)
    day, bad_day = _parse_date(chunk["date"])
    rej.append(
        _reject(
            chunk,
            bad_day & ok,
            "date",
            "date",
            "bad_date",
            "not a date (expected like 2024-03-01)",
        )
    )
    ok &= ~bad_day
    early = day < EARLIEST.date()
    rej.append(_reject(chunk, early & ok, "date", "date", "absurd_date", "date before 2000"))
    ok &= ~early
    # A whole day in the future is one wrong date, not 96 wrong readings.
    future = (day > now.astimezone(ZoneInfo(src.options.time_zone)).date()).fill_null(False)
    rej.append(_reject(chunk, future & ok, "date", "date", "future", "date is in the future"))
    ok &= ~future
    unit = _row_units(src, chunk, rej, ok)
    ok &= unit.is_not_null()
    good = chunk.with_columns(_day=day, _unit=unit).filter(ok).with_row_index("_row")
    # Local midnight of each row's day, in UTC: the start of point 1. Converting 1 value per
    # row, not 96, and keeping the 96 points as floats, keeps this fast.
    good = good.with_columns(
        _start=_local_to_utc(good["_day"].cast(pl.Datetime("us")), src.options.time_zone)
    )
    # Cells -> floats, column by column; a cell with spaces around it is retried stripped.
    values, present = [], []
    for _, k in src._points:
        col = good[f"_p{k}"]
        v = col.cast(pl.Float64, strict=False)
        if col.dtype == pl.String:
            if (v.is_null() & col.is_not_null()).any():
                col = col.str.strip_chars()
                v = col.cast(pl.Float64, strict=False)
            present.append((col.is_not_null() & (col.str.len_bytes() > 0)).to_numpy())
        else:
            present.append(col.is_not_null().to_numpy())
        values.append(v.to_numpy())  # nulls become NaN: rejected as not a number below
    # Wide -> long: one reading per (row, point), row-major. Empty cells are missing readings
    # (a gap the engine reports), not errors. numpy does the reshaping on the 96 float
    # columns at once, rather than polars building a list per row.
    n, m = good.height, len(src._points)
    keep = np.column_stack(present).ravel() if n else np.zeros(0, dtype=bool)
    rows = np.repeat(np.arange(n, dtype=np.int64), m)[keep]
    long = pl.DataFrame(
        {
            "_row": rows,
            "_k": np.tile(np.arange(m, dtype=np.int32), n)[keep],
            "_orig": np.column_stack(values).ravel()[keep] if n else np.zeros(0),
        }
    )
    long = long.with_columns(
        good.select("_line", "meter", "_start", "_unit")[long["_row"]].get_columns()
    )
    minutes = {i: (k - 1) * 15 for i, (_, k) in enumerate(src._points)}
    long = long.with_columns(
        ts=pl.col("_start")
        + pl.duration(minutes=pl.col("_k").replace_strict(minutes, return_dtype=pl.Int64)),
        value=pl.when(pl.col("_unit") == "kW").then(pl.col("_orig") / 4).otherwise(pl.col("_orig")),
        unit=pl.lit("kWh"),
    )
    records, rej2 = _check_values(
        long, now, interval=timedelta(minutes=15), covers=timedelta(minutes=15)
    )
    if rej2.height:
        rej2 = _point_rejections(src, good, rej2)
    rej.append(rej2)
    records = records.select("meter", "ts", "value", "unit", "_line")
    info = good.select("meter", *[c for c in _REGISTRATION if c in good.columns])
    return Batch("readings", records, _concat(rej), info=info.unique("meter", keep="last"))


def _point_rejections(src: Source, good: pl.DataFrame, rej: pl.DataFrame) -> pl.DataFrame:
    """Name the point column and give the cell as written, for rejected points."""
    headers = [h for h, _ in src._points]
    cols = [f"_p{k}" for _, k in src._points]
    out = []
    for r in rej.iter_rows(named=True):
        row, k = r.pop("_row"), r.pop("_k")
        r["field"] = headers[k]
        cell = good[cols[k]][row]
        r["value"] = "(empty)" if cell is None else str(cell)
        out.append(r)
    return pl.DataFrame(out, schema=REJECTION_SCHEMA, orient="row")


def _row_units(src: Source, chunk: pl.DataFrame, rej: list, ok: pl.Series) -> pl.Series:
    if "unit" in chunk.columns:
        raw = chunk["unit"].fill_null("").str.strip_chars()
        lower = raw.str.to_lowercase()
        unit = pl.select(
            pl.when(lower.str.contains("kwh|电量|电能|能量"))
            .then(pl.lit("kWh"))
            .when(lower.str.contains("kw|功率|负荷"))
            .then(pl.lit("kW"))
            .when(raw == "")
            .then(pl.lit(src._unit))
            .otherwise(None)
        ).to_series()
        rej.append(
            _reject(
                chunk,
                unit.is_null() & ok,
                "unit",
                "unit",
                "bad_unit",
                "unit is neither energy (kWh, 电量) nor power (kW, 负荷)",
            )
        )
        return unit
    return pl.Series([src._unit] * chunk.height, dtype=pl.String)
