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
# parts that inflate a thousandfold. The sheet is parsed in Rust (calamine), which holds its
# cells in memory: about as many bytes as the sheet's XML for numbers and inline strings (a
# 100,000-meter 96-point day is some 400 MB of XML), but a shared string is copied into every
# cell that refers to it, so a sheet of short cells naming one long string would multiply it;
# that worst case is bounded too (MAX_CELL_MEMORY).
MAX_SHARED_STRINGS = 64 << 20
MAX_SHEET = 1 << 30
MAX_CELL_MEMORY = 3 << 30
MIN_CELL_XML = 20  # bytes of XML of the smallest shared-string cell, <c t="s"><v>0</v></c>
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
            longest = max(
                (
                    _longest_shared_string(zf, i)
                    for i in parts
                    if i.filename.endswith("sharedStrings.xml")
                ),
                default=0,
            )
            for info in parts:
                if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                    rows = _declared_rows(zf, info)
                    if rows is not None and rows > MAX_ROWS:
                        raise FileError(
                            f"{path}: sheet {info.filename} declares {rows:,} rows, "
                            f"more than an XLSX sheet holds ({MAX_ROWS:,})"
                        )
                    worst = info.file_size + info.file_size // MIN_CELL_XML * longest
                    if worst > MAX_CELL_MEMORY:
                        raise FileError(
                            f"{path}: sheet {info.filename} ({info.file_size:,} bytes of XML) "
                            f"with shared strings of up to {longest:,} bytes could take "
                            f"{worst:,} bytes to read, above the limit of {MAX_CELL_MEMORY:,}; "
                            "export the data as CSV instead"
                        )
    except zipfile.BadZipFile as exc:
        raise FileError(f"{path}: not a readable XLSX workbook (damaged zip): {exc}") from exc


def _longest_shared_string(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """The longest shared string's XML in bytes (its <si> element), streamed."""
    longest, carry = 0, b""
    with zf.open(info) as fh:
        while block := fh.read(1 << 20):
            data = carry + block
            items = data.split(b"</si>")
            carry = items.pop()
            if items:
                longest = max(longest, max(map(len, items)))
            longest = max(longest, len(carry))  # one unfinished string counts as it grows
    return longest


def _declared_rows(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> int | None:
    """The last row of the sheet's <dimension ref="A1:CV25001">, from its first 4 KiB."""
    with zf.open(info) as fh:
        head = fh.read(4096).decode("utf-8", "replace")
    m = re.search(r'<dimension ref="[A-Z]+\d+:[A-Z]+(\d+)"', head)
    return int(m.group(1)) if m else None


def _damaged(path: Path, exc: Exception, where: str = "") -> FileError:
    return FileError(
        f"{path}: not a readable XLSX workbook{where} (truncated or damaged?): "
        f"{' '.join(str(exc).split())}"
    )


def _open_xlsx(path: Path, options: Options) -> Source:
    """The first worksheet with a header row in its first 20 rows. calamine parses the sheet's
    XML in Rust and hands over typed values row by row: no per-cell objects of openpyxl."""
    import python_calamine as calamine

    _check_expansion(path)
    try:
        wb = calamine.CalamineWorkbook.from_path(str(path))
        sheets = [
            (i, m.name)
            for i, m in enumerate(wb.sheets_metadata)
            if m.typ == calamine.SheetTypeEnum.WorkSheet
        ]
    except Exception as exc:  # noqa: BLE001 - calamine raises many types for a damaged file
        raise _damaged(path, exc) from exc
    for index, name in sheets:
        try:
            sheet = wb.get_sheet_by_index(index)
        except Exception as exc:  # noqa: BLE001
            raise _damaged(path, exc, f" (sheet {name!r})") from exc
        first_row = sheet.start[0] if sheet.start else 0
        rows = sheet.iter_rows()
        title_parts = []
        for i, row in enumerate(rows, start=first_row + 1):
            cells = [None if v == "" else v for v in row]
            while cells and cells[-1] is None:
                cells.pop()
            if _looks_like_header(cells):
                src = _classify_header(path, cells, " ".join(title_parts), options)
                src.container = f"xlsx sheet {name!r}"
                src._chunks = _xlsx_chunks(src, wb, rows, cells, i)
                return src
            title_parts.extend(str(c) for c in cells if c is not None)
            if i - first_row >= 20:
                break
        del sheet, rows
    wb.close()
    raise FileError(
        f"{path}: no sheet has a header row (like 表号, 数据日期, 0:15 … 24:00) in its "
        "first 20 rows"
    )


def _cell_text(v) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, datetime):
        return (
            v.strftime("%Y-%m-%d %H:%M:%S")
            if (v.hour or v.minute or v.second)
            else v.strftime("%Y-%m-%d")
        )
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))  # a number cell holding a meter or account number: no ".0"
    return str(v)


def _xlsx_chunks(src: Source, wb, rows, cells: list, header_row: int):
    n = len(cells)
    names = [str(c) if c is not None else f"_blank{i}" for i, c in enumerate(cells)]
    size = max(1000, 1_000_000 // max(n, 1))  # about a million cells a chunk
    buf, lines, rejected = [], [], []
    row_no = header_row
    try:
        for row in rows:
            row_no += 1
            blanks = row.count("")
            if blanks == len(row):
                continue
            if len(row) > n and row[n:].count("") != len(row) - n:
                values = [None if v == "" else v for v in row]
                extra = [v for v in values[n:] if v is not None]
                text = _short(",".join("" if v is None else str(v) for v in values).encode())
                rejected.append(
                    (row_no, "", text, _ragged(src, n + len(extra), n), "wrong_field_count")
                )
                continue
            buf.append(row[:n] if len(row) >= n else row + [""] * (n - len(row)))
            lines.append(row_no)
            if len(buf) >= size:
                frame = _xlsx_frame(src, names, buf, lines)
                yield frame, _rejection_frame(rejected), len(buf) + len(rejected)
                buf, lines, rejected = [], [], []
    except Exception as exc:  # noqa: BLE001 - calamine's errors while converting a row
        raise FileError(
            f"{src.path}: XLSX damaged after row {row_no}: {' '.join(str(exc).split())}"
        ) from exc
    finally:
        wb.close()
    if buf or rejected:
        frame = _xlsx_frame(src, names, buf, lines) if buf else _empty_canonical(src)
        yield frame, _rejection_frame(rejected), len(buf) + len(rejected)


def _xlsx_column(values: tuple) -> pl.Series:
    """One column of a chunk as text (empty cells null). Converted by polars when the column
    holds only text or only numbers (the usual case), cell by cell when it mixes them."""
    types = set(map(type, values))
    if types == {str}:
        out = pl.Series(values, dtype=pl.String)
        return out.replace("", None) if "" in values else out
    if types <= {float, int, str} and (
        str not in types or sum(type(v) is str for v in values) == values.count("")
    ):  # numbers, and empty cells
        num = pl.Series(values, dtype=pl.Float64, strict=False)
        whole = (num == num.floor()) & (num.abs() < 1e15)
        return pl.select(
            pl.when(whole)  # a number cell holding a meter or account number: no ".0"
            .then(num.cast(pl.Int64, strict=False).cast(pl.String))
            .otherwise(num.cast(pl.String))
        ).to_series()
    return pl.Series([_cell_text(v) for v in values], dtype=pl.String)


def _xlsx_frame(src, names, buf, lines) -> pl.DataFrame:
    wanted = set(src._columns.values()) | {h for h, _ in src._points}
    columns = {
        name: _xlsx_column(col)
        for name, col in zip(names, zip(*buf, strict=True), strict=True)
        if name in wanted
    }
    frame = pl.DataFrame(columns).with_columns(_line=pl.Series(lines, dtype=pl.Int64))
    return _frame_from_header(src, frame)


# ---- Parquet ---------------------------------------------------------------------------------
