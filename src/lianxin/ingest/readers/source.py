"""A sniffed file: what it holds, and its chunks turned into batches by the reader of its kind."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from lianxin.ingest.readers import (
    curves,
    events,
    intervals,
    long,
    payments,
    registers,
    replacements,
    topology,
)
from lianxin.ingest.readers.common import Batch, Options, _needs_strip

# export kind -> the function that turns one chunk (canonical columns + `_line`) into a Batch
READERS = {
    "load_curve": curves.read,
    "registers": registers.read,
    "interval_registers": registers.read,
    "register_curve": intervals.read_wide,
    "replacements": replacements.read,
    "long": long.read,
    "events": events.read,
    "payments": payments.read_payments,
    "balances": payments.read_balances,
    "topology": topology.read,
}


@dataclass
class Source:
    path: Path
    container: str  # csv | xlsx | parquet
    encoding: str | None
    kind: str  # load_curve | registers | long | events | payments | balances | topology
    unit_note: str = ""
    options: Options = field(default_factory=Options)
    _chunks: Iterator[tuple[pl.DataFrame, pl.DataFrame, int]] | None = None  # frame, rejected, rows
    _columns: dict[str, str] = field(default_factory=dict)  # canonical -> header as written
    _points: list[tuple[str, int]] = field(default_factory=list)  # (header, k 1..96)
    _unit: str | None = None
    _ignored: list[tuple[str, str]] = field(default_factory=list)  # (header, why)
    _factors: dict[str, float] = field(default_factory=dict)  # register column -> to kWh
    _start_labelled: bool = False  # point labels 0:00 … 23:45 (not 0:15 … 24:00)
    # Interval registers: the last accepted point per meter, per flow, across chunks (a frame:
    # meter, _ct as µs since the epoch, _cv).
    _carry: dict[str, object] = field(default_factory=dict)
    register_notes: dict[str, int] = field(default_factory=dict)  # rollover/replaced -> count
    skipped_rows: dict[str, int] = field(default_factory=dict)  # e.g. reactive rows of a wide file

    def describe(self) -> str:
        parts = [
            {
                "load_curve": "96-point load curve",
                "registers": "daily frozen registers",
                "interval_registers": "interval registers (示值)",
                "register_curve": "96-point register curve (示值)",
                "replacements": "meter replacements (换表)",
                "long": "long-format readings",
                "events": "meter events",
                "payments": "payment records",
                "balances": "prepaid balances",
                "topology": "transformer-area topology",
            }[self.kind],
            self.container,
        ]
        if self.encoding:
            parts.append(self.encoding)
        if self.unit_note:
            parts.append(self.unit_note)
        return ", ".join(parts)

    def columns_note(self) -> list[str]:
        """Which header columns were used (and as what) and which were ignored, and why."""
        what = {
            "meter": "meter",
            "account": "account",
            "household": "household",
            "date": "date",
            "ts": "time",
            "register": "forward active register",
            "register_reverse": "reverse active register (export)",
            "value": "value",
            "unit": "unit / data type",
            "old_meter": "old meter",
            "new_meter": "new meter",
            "old_final": "old meter's final register",
            "new_initial": "new meter's initial register",
        }
        used = [f"{raw} ({what.get(canon, canon)})" for canon, raw in self._columns.items()]
        if self._points:
            used.append(
                f"{len(self._points)} point columns {self._points[0][0]} … {self._points[-1][0]}"
            )
        out = ["used: " + ", ".join(used)]
        if self._ignored:
            out.append("ignored: " + ", ".join(f"{h} ({why})" for h, why in self._ignored))
        return out

    def batches(self) -> Iterator[Batch]:
        now = self.options.now or datetime.now(UTC)
        process = READERS[self.kind]
        ids = [
            c
            for c in ("meter", "account", "household", "area_code", "old_meter", "new_meter")
            if c in self._columns
        ]
        for chunk, rejected, rows in self._chunks:
            chunk = chunk.with_columns(
                pl.col(c).cast(pl.String).str.strip_chars() for c in ids if _needs_strip(chunk[c])
            )
            batch = process(self, chunk, now)
            # Name fields as the file's header writes them (数据日期, not "date").
            batch.rejections = pl.concat(
                [rejected, batch.rejections], how="vertical_relaxed"
            ).with_columns(pl.col("field").replace(self._columns))
            batch.rows = rows
            yield batch
