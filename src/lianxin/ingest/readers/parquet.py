"""Parquet files: the schema's names are the header; rows are read in slices."""

from __future__ import annotations

from pathlib import Path

import polars as pl

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
    src._chunks = _parquet_chunks(src, pf, cells)
    return src


def _parquet_chunks(src: Source, pf, cells: list, size: int = 1_000_000):
    wanted = [raw for raw in cells if raw in src._columns.values() or raw in dict(src._points)]
    total = pf.metadata.num_rows
    row = 0
    try:
        # polars' own reader (multi-threaded) on row slices: bounded memory, whole speed.
        lf = pl.scan_parquet(src.path).select(wanted)
        while row < total:
            frame = lf.slice(row, size).collect()
            frame = frame.with_columns(
                _line=pl.int_range(row + 1, row + 1 + frame.height, dtype=pl.Int64)
            )
            row += frame.height
            yield _frame_from_header(src, frame), _rejection_frame([]), frame.height
            if not frame.height:
                break
    except Exception as exc:  # noqa: BLE001 - a damaged file raises many kinds of error
        raise FileError(
            f"{src.path}: Parquet data unreadable after row {row} (truncated?): "
            f"{' '.join(str(exc).split())}"
        ) from exc


# ---- helpers ---------------------------------------------------------------------------------
