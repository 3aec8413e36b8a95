"""Meter events: power off/on, voltage out of range, relay, tamper, communication loss."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from lianxin.ingest.readers.common import (
    _REGISTRATION,
    Batch,
    _concat,
    _dated,
    _reject,
    _required,
)
from lianxin.meterdata import EVENT_SPELLINGS, FUTURE_TOLERANCE

if TYPE_CHECKING:
    from lianxin.ingest.readers.source import Source


def read(src: Source, chunk: pl.DataFrame, now: datetime) -> Batch:
    rej = []
    ok = _required(chunk, "meter", rej)
    ts, _, ok = _dated(src, chunk, ok, rej)
    raw = chunk["event"].cast(pl.String).fill_null("").str.strip_chars()
    event = raw.str.to_lowercase().replace_strict(EVENT_SPELLINGS, default=None)
    rej.append(
        _reject(
            chunk,
            event.is_null() & ok,
            "event",
            "event",
            "bad_event",
            "unknown event type (expected e.g. 停电, 上电, 电压越限, 跳闸, 开盖, 通信中断)",
        )
    )
    ok &= event.is_not_null()
    future = ts > (now + FUTURE_TOLERANCE)
    rej.append(
        _reject(
            chunk,
            future.fill_null(False) & ok,
            "ts",
            "ts",
            "future",
            "timestamp is in the future",
        )
    )
    ok &= ~future.fill_null(False)
    detail = (
        chunk["detail"].cast(pl.String).fill_null("")
        if "detail" in chunk.columns
        else pl.lit("", pl.String)  # a bare "" would name a column
    )
    records = chunk.with_columns(ts=ts, event=event, detail=detail).filter(ok)
    records = records.select(
        "meter",
        "ts",
        "event",
        "detail",
        "_line",
        *[c for c in _REGISTRATION if c in chunk.columns],
    )
    return Batch("events", records, _concat(rej))
