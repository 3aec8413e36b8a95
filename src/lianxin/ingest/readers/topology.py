"""Transformer-area topology: which area (台区) and feeder each meter hangs on."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from lianxin.ingest.readers.common import (
    _REGISTRATION,
    Batch,
    _concat,
    _required,
)

if TYPE_CHECKING:
    from lianxin.ingest.readers.source import Source


def read(src: Source, chunk: pl.DataFrame, now: datetime) -> Batch:
    rej = []
    ok = _required(chunk, "meter", rej)
    ok &= _required(chunk, "area_code", rej, ok)
    records = chunk.filter(ok).select(
        "meter", "_line", *[c for c in _REGISTRATION if c in chunk.columns]
    )
    return Batch("topology", records, _concat(rej))
