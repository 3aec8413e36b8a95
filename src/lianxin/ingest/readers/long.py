"""Long-format readings (CSV or Parquet): one reading per row."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl

from lianxin.ingest.readers.common import (
    Batch,
    _check_values,
    _concat,
    _dated,
    _required,
)
from lianxin.meterdata import unit_name

if TYPE_CHECKING:
    from lianxin.ingest.readers.source import Source


def read(src: Source, chunk: pl.DataFrame, now: datetime) -> Batch:
    rej = []
    entity = "meter" if "meter" in chunk.columns else "household"
    ok = _required(chunk, entity, rej)
    ts, _, ok = _dated(src, chunk, ok, rej)
    if src.options.ts_marks == "end":
        ts = ts - timedelta(minutes=src.options.interval_minutes)
    default = src._unit or "kWh"
    if "unit" in chunk.columns:
        unit = chunk["unit"].cast(pl.String)
        # Normalise spellings on the distinct values only (a column has a handful).
        changes = {u: unit_name(u, default) for u in unit.unique().to_list() if u is not None}
        changes = {u: c for u, c in changes.items() if u != c}
        unit = unit.fill_null(default)
        if changes:
            unit = unit.replace(changes)
    elif "kind" in chunk.columns:
        kind = chunk["kind"].cast(pl.String).str.to_lowercase()
        unit = pl.select(
            pl.when(kind.is_in(["water", "gas", "水", "气"]))
            .then(pl.lit("m3"))
            .otherwise(pl.lit(default))
        ).to_series()
    else:
        unit = pl.repeat(default, chunk.height, dtype=pl.String, eager=True)
    value_raw = chunk["value"]
    if value_raw.dtype == pl.String:
        value = value_raw.str.strip_chars().cast(pl.Float64, strict=False)
        extra = {"_raw": value_raw}
    else:  # typed (Parquet): the text of a rejected value is made from the value itself
        value = value_raw.cast(pl.Float64, strict=False)
        extra = {}
    frame = chunk.with_columns(ts=ts, unit=unit, value=value, **extra).filter(ok)
    if entity == "household":
        frame = frame.rename({"household": "meter"}).with_columns(_by_household=pl.lit(True))
    records, rej2 = _check_values(frame, now, interval=timedelta(0), field=src._columns["value"])
    rej.append(rej2)
    return Batch("readings", records, _concat(rej))
