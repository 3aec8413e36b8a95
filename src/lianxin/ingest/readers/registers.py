"""Daily frozen register readings (日冻结): the register value at local 00:00 of 数据日期."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl

from lianxin.ingest.readers.common import (
    Batch,
    _check_values,
    _concat,
    _local_to_utc,
    _parse_date,
    _reject,
    _required,
)

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
