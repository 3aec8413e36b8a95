"""Register readings: daily frozen (日冻结: the register value at local 00:00 of 数据日期), or
interval registers (示值) when the file has a time column (数据时间, 采集时间, 冻结时间) or its
日期 column holds times of day (see `intervals`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl

from lianxin.ingest.readers import intervals
from lianxin.ingest.readers.common import (
    Batch,
    _check_values,
    _concat,
    _dated,
    _local_to_utc,
    _parse_date,
    _parse_ts,
    _reject,
    _required,
)

if TYPE_CHECKING:
    from lianxin.ingest.readers.source import Source


def read(src: Source, chunk: pl.DataFrame, now: datetime) -> Batch:
    if src.kind == "registers" and chunk.height:
        # 日期 holding full timestamps: decided once per file, from the first chunk's values.
        ts, bad = _parse_ts(chunk["date"], src.options.time_zone)
        local = ts.filter(~bad).dt.convert_time_zone(src.options.time_zone)
        if local.len() and (local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute()).max() > 0:
            src.kind = "interval_registers"
            src._columns = {("ts" if k == "date" else k): c for k, c in src._columns.items()}
    if src.kind == "interval_registers":
        if "date" in chunk.columns and "ts" not in chunk.columns:
            chunk = chunk.rename({"date": "ts"})
        rej = []
        ok = _required(chunk, "meter", rej)
        ts, _, ok = _dated(src, chunk, ok, rej)
        return intervals.read_long(src, chunk, ts, ok, rej)
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
    frame = chunk.with_columns(
        _raw=chunk["register"].cast(pl.String),
        _field=pl.lit(src._columns["register"]),
        ts=_local_to_utc(day.cast(pl.Datetime("us")), src.options.time_zone),
        unit=pl.lit("kWh reg"),
    ).filter(ok)
    frame = frame.filter(pl.col("_raw").is_not_null() & (pl.col("_raw").str.strip_chars() != ""))
    frame = frame.with_columns(
        value=pl.col("_raw").str.strip_chars().cast(pl.Float64, strict=False)
    )
    records, rej2 = _check_values(frame, now, interval=timedelta(0), field=src._columns["register"])
    rej.append(rej2)
    return Batch("registers", records, _concat(rej))
