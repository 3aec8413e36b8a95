"""XLSX workbooks: the first sheet with a header row in its first 20 rows, read in row chunks."""

from __future__ import annotations

import re
import zipfile
from datetime import datetime
from pathlib import Path

import polars as pl

from lianxin.ingest.readers.common import FileError, Options, _ragged, _rejection_frame, _short
from lianxin.ingest.readers.header import (
    _classify_header,
    _empty_canonical,
    _frame_from_header,
    _looks_like_header,
)
from lianxin.ingest.readers.source import Source

# Limits checked on the zip's directory, before anything is expanded: a small file may declare
# parts that inflate a thousandfold (openpyxl holds every shared string in memory). A meter
# export has few distinct strings; a sheet of 256 MiB is some 70,000 rows of 96-point curves.
MAX_SHARED_STRINGS = 64 << 20
MAX_SHEET = 256 << 20
MAX_ROWS = 1_048_576  # Excel's own limit: a sheet that declares more is not from Excel


def _check_expansion(path: Path) -> None:
    """Refuse a workbook whose parts would expand beyond the limits (the zip's declared sizes,
    which zipfile also holds the expansion to)."""
    try:
        with zipfile.ZipFile(path) as zf:
            parts = zf.infolist()
            for info in parts:
                name = info.filename
                limit = (
                    MAX_SHARED_STRINGS
                    if name.endswith("sharedStrings.xml")
                    else MAX_SHEET
                    if name.startswith("xl/worksheets/")
                    else None
                )
                if limit is not None and info.file_size > limit:
                    raise FileError(
                        f"{path}: XLSX part {name} expands to {info.file_size:,} bytes "
                        f"({info.compress_size:,} compressed), above the limit of {limit:,}; "
                        "export the data as CSV instead"
                    )
            for info in parts:
                if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                    rows = _declared_rows(zf, info)
                    if rows is not None and rows > MAX_ROWS:
                        raise FileError(
                            f"{path}: sheet {info.filename} declares {rows:,} rows, "
                            f"more than an XLSX sheet holds ({MAX_ROWS:,})"
                        )
    except zipfile.BadZipFile as exc:
        raise FileError(f"{path}: not a readable XLSX workbook (damaged zip): {exc}") from exc


def _declared_rows(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> int | None:
    """The last row of the sheet's <dimension ref="A1:CV25001">, from its first 4 KiB."""
    with zf.open(info) as fh:
        head = fh.read(4096).decode("utf-8", "replace")
    m = re.search(r'<dimension ref="[A-Z]+\d+:[A-Z]+(\d+)"', head)
    return int(m.group(1)) if m else None


def _open_xlsx(path: Path, options: Options) -> Source:
    import openpyxl

    _check_expansion(path)
    try:
        # A file object, so that openpyxl does not judge the file by its name.
        wb = openpyxl.load_workbook(open(path, "rb"), read_only=True, data_only=True)  # noqa: SIM115
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a damaged file
        raise FileError(
            f"{path}: not a readable XLSX workbook (truncated or damaged?): "
            f"{' '.join(str(exc).split())}"
        ) from exc
    for ws in wb.worksheets:
        rows = ws.iter_rows(values_only=True)
        title_parts = []
        for i, row in enumerate(rows, start=1):
            cells = list(row)
            while cells and cells[-1] is None:
                cells.pop()
            if _looks_like_header(cells):
                src = _classify_header(path, cells, " ".join(title_parts), options)
                src.container = f"xlsx sheet {ws.title!r}"
                src._chunks = _xlsx_chunks(src, wb, rows, cells, i)
                return src
            title_parts.extend(str(c) for c in cells if c is not None)
            if i >= 20:
                break
    wb.close()
    raise FileError(
        f"{path}: no sheet has a header row (like 表号, 数据日期, 0:15 … 24:00) in its "
        "first 20 rows"
    )


def _cell_text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        return (
            v.strftime("%Y-%m-%d %H:%M:%S")
            if (v.hour or v.minute or v.second)
            else v.strftime("%Y-%m-%d")
        )
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return repr(v)
    return str(v)


def _xlsx_chunks(src: Source, wb, rows, cells: list, header_row: int, size: int = 20_000):
    n = len(cells)
    names = [str(c) if c is not None else f"_blank{i}" for i, c in enumerate(cells)]
    buf, lines, rejected = [], [], []
    row_no = header_row
    try:
        for row in rows:
            row_no += 1
            values = list(row)
            if all(v is None for v in values):
                continue
            extra = [v for v in values[n:] if v is not None]
            if extra:
                text = _short(",".join("" if v is None else str(v) for v in values).encode())
                rejected.append(
                    (row_no, "", text, _ragged(src, n + len(extra), n), "wrong_field_count")
                )
                continue
            buf.append([_cell_text(v) for v in (values + [None] * n)[:n]])
            lines.append(row_no)
            if len(buf) >= size:
                frame = _xlsx_frame(src, names, buf, lines)
                yield frame, _rejection_frame(rejected), len(buf) + len(rejected)
                buf, lines, rejected = [], [], []
    except Exception as exc:  # noqa: BLE001 - damaged XML inside the workbook
        raise FileError(
            f"{src.path}: XLSX damaged after row {row_no}: {' '.join(str(exc).split())}"
        ) from exc
    finally:
        wb.close()
    if buf or rejected:
        frame = _xlsx_frame(src, names, buf, lines) if buf else _empty_canonical(src)
        yield frame, _rejection_frame(rejected), len(buf) + len(rejected)


def _xlsx_frame(src, names, buf, lines) -> pl.DataFrame:
    frame = pl.DataFrame(buf, schema=dict.fromkeys(names, pl.String), orient="row")
    frame = frame.with_columns(_line=pl.Series(lines, dtype=pl.Int64))
    return _frame_from_header(src, frame)


# ---- Parquet ---------------------------------------------------------------------------------
