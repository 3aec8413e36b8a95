"""Payment records and prepaid (费控) balances."""

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
    _to_float,
)
from lianxin.meterdata import FUTURE_TOLERANCE

if TYPE_CHECKING:
    from lianxin.ingest.readers.source import Source


def read_payments(src: Source, chunk: pl.DataFrame, now: datetime) -> Batch:
    rej = []
    entity = "account" if "account" in chunk.columns else "meter"
    ok = _required(chunk, entity, rej)
    ts, ts_field, ok = _dated(src, chunk, ok, rej)
    amount, bad = _to_float(chunk["amount"])
    rej.append(_reject(chunk, bad & ok, "amount", "amount", "not_a_number", "not a number"))
    ok &= ~bad
    neg = (amount <= 0).fill_null(False)
    rej.append(
        _reject(
            chunk,
            neg & ok,
            "amount",
            "amount",
            "negative",
            "payment amount must be positive (refunds are not payments)",
        )
    )
    ok &= ~neg
    big = (amount > 1e6).fill_null(False)
    rej.append(
        _reject(chunk, big & ok, "amount", "amount", "absurd", "amount above 1,000,000 yuan")
    )
    ok &= ~big
    future = (ts > now + FUTURE_TOLERANCE).fill_null(False)
    rej.append(
        _reject(chunk, future & ok, ts_field, ts_field, "future", "timestamp is in the future")
    )
    ok &= ~future
    # A file without a channel column (the documented minimal shape 户号, 缴费时间, 缴费金额):
    # an empty channel, as a literal (a bare "" would name a column).
    channel = (
        chunk["channel"].cast(pl.String).fill_null("")
        if "channel" in chunk.columns
        else pl.lit("", pl.String)
    )
    records = chunk.with_columns(ts=ts, amount=amount, channel=channel).filter(ok)
    if entity == "meter":
        records = records.with_columns(_by_meter=pl.lit(True))
    else:
        records = records.drop("meter", strict=False)
    keep = ["account" if entity == "account" else "meter", "ts", "amount", "channel", "_line"]
    records = records.select(*keep, *[c for c in records.columns if c == "_by_meter"])
    return Batch("payments", records, _concat(rej))


def read_balances(src: Source, chunk: pl.DataFrame, now: datetime) -> Batch:
    rej = []
    ok = _required(chunk, "meter", rej)
    ts, ts_field, ok = _dated(src, chunk, ok, rej)
    balance, bad = _to_float(chunk["balance"])
    rej.append(_reject(chunk, bad & ok, "balance", "balance", "not_a_number", "not a number"))
    ok &= ~bad
    # A prepaid balance may be negative (arrears, 欠费), but not absurdly so.
    big = (balance.abs() > 1e6).fill_null(False)
    rej.append(
        _reject(chunk, big & ok, "balance", "balance", "absurd", "balance beyond ±1,000,000 yuan")
    )
    ok &= ~big
    future = (ts > now + FUTURE_TOLERANCE).fill_null(False)
    rej.append(
        _reject(chunk, future & ok, ts_field, ts_field, "future", "timestamp is in the future")
    )
    ok &= ~future
    records = chunk.with_columns(ts=ts, balance=balance).filter(ok)
    records = records.select(
        "meter", "ts", "balance", "_line", *[c for c in _REGISTRATION if c in chunk.columns]
    )
    return Batch("balances", records, _concat(rej))
