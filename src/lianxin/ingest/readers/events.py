"""Meter events: power off/on, voltage out of range, relay, tamper, communication loss."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from lianxin.ingest.readers.common import (
    _REGISTRATION,
    FUTURE_TOLERANCE,
    Batch,
    _concat,
    _dated,
    _reject,
    _required,
)

# Meter events as exports spell them -> the store's event kinds.
EVENT_NAMES = {
    "停电": "power_off",
    "掉电": "power_off",
    "失电": "power_off",
    "power_off": "power_off",
    "last_gasp": "power_off",
    "上电": "power_on",
    "复电": "power_on",
    "来电": "power_on",
    "power_on": "power_on",
    "电压越限": "voltage_out_of_range",
    "过压": "voltage_out_of_range",
    "欠压": "voltage_out_of_range",
    "电压越上限": "voltage_out_of_range",
    "电压越下限": "voltage_out_of_range",
    "voltage_out_of_range": "voltage_out_of_range",
    "跳闸": "relay_open",
    "拉闸": "relay_open",
    "费控跳闸": "relay_open",
    "relay_open": "relay_open",
    "合闸": "relay_close",
    "relay_close": "relay_close",
    "开盖": "tamper",
    "开表盖": "tamper",
    "窃电": "tamper",
    "tamper": "tamper",
    "通信中断": "comm_loss",
    "失联": "comm_loss",
    "通讯中断": "comm_loss",
    "comm_loss": "comm_loss",
    "通信恢复": "comm_restored",
    "comm_restored": "comm_restored",
}

if TYPE_CHECKING:
    from lianxin.ingest.readers.source import Source


def read(src: Source, chunk: pl.DataFrame, now: datetime) -> Batch:
    rej = []
    ok = _required(chunk, "meter", rej)
    ts, _, ok = _dated(src, chunk, ok, rej)
    raw = chunk["event"].cast(pl.String).fill_null("").str.strip_chars()
    event = raw.str.to_lowercase().replace_strict(EVENT_NAMES, default=None)
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
    detail = chunk["detail"].cast(pl.String).fill_null("") if "detail" in chunk.columns else ""
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
