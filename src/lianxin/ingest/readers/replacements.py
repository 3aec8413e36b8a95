"""Meter replacement (换表) records: old and new meter numbers, the old meter's final register,
the new one's initial register, and when. The pipeline keeps them as care.MeterReplacement; the
interval register reader uses them to carry a household's energy across the change."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from lianxin.ingest.readers.common import (
    Batch,
    _concat,
    _dated,
    _reject,
    _required,
    _to_float,
)

if TYPE_CHECKING:
    from lianxin.ingest.readers.source import Source


def read(src: Source, chunk: pl.DataFrame, now: datetime) -> Batch:
    rej = []
    ok = _required(chunk, "old_meter", rej)
    ok &= _required(chunk, "new_meter", rej, ok)
    ts, _, ok = _dated(src, chunk, ok, rej)
    values = {}
    for column in ("old_final", "new_initial"):
        v, bad = _to_float(chunk[column])
        bad = bad | (v < 0).fill_null(False) | v.is_infinite().fill_null(False)
        rej.append(
            _reject(
                chunk,
                bad & ok,
                column,
                column,
                "bad_register",
                "not a register reading (a number of kWh, 0 or more)",
            )
        )
        ok &= ~bad
        values[column] = v
    future = (ts > now).fill_null(False)
    ts_field = "ts" if "ts" in chunk.columns else "date"
    rej.append(_reject(chunk, future & ok, ts_field, ts_field, "future", "time is in the future"))
    ok &= ~future
    records = chunk.select("_line", "old_meter", "new_meter").with_columns(
        ts=ts, old_final=values["old_final"], new_initial=values["new_initial"]
    )
    return Batch("replacements", records.filter(ok), _concat(rej))
