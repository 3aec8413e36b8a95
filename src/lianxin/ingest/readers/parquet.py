"""Parquet files: the schema's names are the header; rows are read in slices."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa

from lianxin.ingest.readers.common import FileError, Options, _rejection_frame
from lianxin.ingest.readers.header import _classify_header, _frame_from_header
from lianxin.ingest.readers.source import Source


def _open_parquet(path: Path, options: Options) -> Source:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad footer
        raise FileError(
            f"{path}: not a readable Parquet file (truncated?): {' '.join(str(exc).split())}"
        ) from exc
    cells = pf.schema_arrow.names
    src = _classify_header(path, cells, "", options)
    src.container = "parquet"
    wanted = [raw for raw in cells if raw in src._columns.values() or raw in dict(src._points)]
    zoned = []
    for name in wanted:
        kind = pf.schema_arrow.field(name).type
        if pa.types.is_nested(kind):
            raise FileError(
                f"{path}: column {name!r} holds {kind} (several values per cell); "
                "expected one value per row"
            )
        if pa.types.is_timestamp(kind) and kind.tz not in (None, "UTC"):
            zoned.append(name)
    src._chunks = _parquet_chunks(src, pf, wanted, zoned)
    return src


def _parquet_chunks(src: Source, pf, wanted: list, zoned: list, size: int = 1_000_000):
    total = pf.metadata.num_rows
    row = 0
    try:
        if zoned:
            # Timestamps with a zone of their own (e.g. "+08:00", which polars cannot parse):
            # Arrow keeps them as UTC instants, so naming the zone UTC changes no instant.
            slices = _utc_slices(pf, wanted, zoned, size)
        else:
            # polars' own reader (multi-threaded) on row slices: bounded memory, whole speed.
            lf = pl.scan_parquet(src.path).select(wanted)
            slices = (lf.slice(at, size).collect() for at in range(0, total, size))
        for frame in slices:
            frame = frame.with_columns(
                _line=pl.int_range(row + 1, row + 1 + frame.height, dtype=pl.Int64)
            )
            row += frame.height
            yield _frame_from_header(src, frame), _rejection_frame([]), frame.height
            if not frame.height or row >= total:
                break
    # A damaged file raises many kinds of error; polars' panics are BaseExceptions.
    except (Exception, pl.exceptions.PanicException) as exc:  # noqa: BLE001
        raise FileError(
            f"{src.path}: Parquet data unreadable after row {row} (truncated?): "
            f"{' '.join(str(exc).split())}"
        ) from exc


def _utc_slices(pf, wanted: list, zoned: list, size: int):
    for batch in pf.iter_batches(batch_size=size, columns=wanted):
        table = pa.Table.from_batches([batch])
        fields = [
            pa.field(f.name, pa.timestamp(f.type.unit, "UTC")) if f.name in zoned else f
            for f in table.schema
        ]
        yield pl.from_arrow(table.cast(pa.schema(fields)))


# ---- helpers ---------------------------------------------------------------------------------
