"""CSV/TSV text: encoding (UTF-8 or GB18030), separator, header row, then chunks of lines."""

from __future__ import annotations

import codecs
import csv
import os
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from lianxin.ingest.readers.common import FileError, Options, _ragged, _rejection_frame, _short
from lianxin.ingest.readers.header import (
    _classify_header,
    _empty_canonical,
    _frame_from_header,
    _looks_like_header,
)
from lianxin.ingest.readers.source import Source


def _detect_encoding(path: Path, head: bytes) -> str:
    """UTF-8 or GB18030, decided from the first megabyte. A damaged line further down does not
    change the answer: it is rejected on its own, with its line number."""
    utf8_err = _first_error(head, "utf-8-sig")
    if utf8_err is None or not head[:utf8_err].isascii():
        return "utf-8-sig"  # valid multi-byte UTF-8 does not happen by chance in GBK text
    gb_err = _first_error(head, "gb18030")
    if gb_err is None or b"\n" in head[:gb_err]:
        return "gb18030"
    raise FileError(
        f"{path}: not text in UTF-8 or GBK/GB18030 (byte 0x{head[gb_err]:02x} at offset "
        f"{gb_err}); is it a binary file?"
    )


def _first_error(data: bytes, encoding: str) -> int | None:
    try:
        codecs.getincrementaldecoder(encoding)().decode(data, final=False)
        return None
    except UnicodeDecodeError as exc:
        return exc.start


def _open_utf16(path: Path, options: Options) -> Source:
    """A UTF-16 file with its byte-order mark (a declared charset, as Excel's "Unicode text"
    writes): transcoded to a temporary UTF-8 copy, streamed, then read as any UTF-8 text. Line
    numbers and messages are the original file's."""
    tmp = tempfile.NamedTemporaryFile(prefix="lianxin-utf16-", suffix=".csv", delete=False)  # noqa: SIM115
    done = 0
    try:
        with tmp, open(path, "rb") as fh:
            reader = codecs.getreader("utf-16")(fh)  # the BOM says which byte order
            while True:
                text = reader.read(1 << 20)
                if not text:
                    break
                done += len(text)
                tmp.write(text.encode("utf-8", "surrogatepass"))
        with open(tmp.name, "rb") as fh:
            head = fh.read(1 << 20)
        src = _open_text(path, head, options, data_path=Path(tmp.name))
    except UnicodeDecodeError as exc:
        os.unlink(tmp.name)
        raise FileError(
            f"{path}: declares UTF-16 (byte-order mark) but is not valid UTF-16 after "
            f"character {done:,}: {exc.reason}"
        ) from None
    except BaseException:
        os.unlink(tmp.name)
        raise
    src.encoding = "UTF-16"
    return src


def _open_text(path: Path, head: bytes, options: Options, data_path: Path | None = None) -> Source:
    encoding = _detect_encoding(path, head)
    text = head.decode(encoding, errors="replace")
    lines = text.splitlines()
    header_index = None
    for i, line in enumerate(lines[:20]):
        sep = _separator(line)
        cells = next(csv.reader([line], delimiter=sep)) if line.strip() else []
        if _looks_like_header(cells):
            header_index = i
            break
    if header_index is None:
        first = lines[0][:120] if lines else ""
        raise FileError(
            f"{path}: no header row found in the first 20 lines (line 1: {first!r}); "
            "expected column names like 表号, 数据日期, 0:15 … 24:00"
        )
    header_line = lines[header_index]
    sep = _separator(header_line)
    cells = next(csv.reader([header_line], delimiter=sep))
    while cells and not str(cells[-1]).strip():  # a trailing separator on every line
        cells = cells[:-1]
    title = " ".join(lines[:header_index])
    src = _classify_header(path, cells, title, options)
    src.container = "csv"
    src.encoding = "UTF-8" if encoding == "utf-8-sig" else "GB18030"
    src._chunks = _csv_chunks(src, encoding, sep, cells, header_index + 1, data_path)
    return src


def _separator(line: str) -> str:
    counts = {s: line.count(s) for s in (",", "\t", ";", "|")}
    return max(counts, key=counts.get) if max(counts.values()) else ","


def _csv_chunks(
    src: Source, encoding: str, sep: str, cells: list, header_lines: int, data_path=None
):
    """Yield (canonical frame, rejections, rows) per chunk of about options.chunk_bytes."""
    try:
        yield from _csv_lines(src, encoding, sep, cells, header_lines, data_path or src.path)
    finally:
        if data_path is not None:  # a transcoded copy (UTF-16)
            data_path.unlink(missing_ok=True)


def _csv_lines(src: Source, encoding: str, sep: str, cells: list, header_lines: int, data_path):
    n_fields = len(cells)
    names = [f"c{i}" for i in range(n_fields)]
    wanted = {raw: i for i, raw in enumerate(cells)}
    rename = {
        f"c{wanted[raw]}": raw
        for raw in list(src._columns.values()) + [h for h, _ in src._points]
        if raw in wanted
    }
    lineno = 0
    carry = b""
    utf8 = encoding == "utf-8-sig"
    # A wide row holds up to 96 readings, a long one holds one: long rows are read 4 chunks at a
    # time (64 MiB, ~1.2 M rows, as a Parquet row group), since each chunk is one store write
    # and many small writes cost more, in time and in memory, than the larger chunk (measured
    # in bench/registers.py long-csv: CPU 30 s -> 20 s, peak RSS 2.8 -> 1.4 GB).
    size = src.options.chunk_bytes * (1 if src._points else 4)
    with open(data_path, "rb") as fh:
        while True:
            block = fh.read(size)
            data = carry + block  # (no copy when carry is empty)
            if block:
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                # The partial last line is read again with the next chunk (a seek back), not
                # carried: joining it to the next block would copy the whole chunk.
                tail = len(data) - cut - 1
                if tail and len(carry) == 0:
                    fh.seek(-tail, os.SEEK_CUR)
                    data, carry = data[: cut + 1], b""
                else:
                    data, carry = data[: cut + 1], data[cut + 1 :]
            else:
                carry = b""
            if not data:
                break
            # Decode the chunk in one go (fast, in C) and check its lines as arrays; line by
            # line only when it holds a damaged line, which is then rejected on its own.
            plain = None
            try:
                decoded = None if data.isascii() else data.decode(encoding)
            except UnicodeDecodeError:
                good, good_lines, rejected, lineno = _check_lines_slow(
                    src, data, encoding, sep, n_fields, header_lines, lineno
                )
                body = b"\n".join(good) + b"\n" if good else b""
            else:
                if not utf8 and decoded is not None:
                    data = decoded.encode("utf-8")
                del decoded
                plain = _plain_chunk(data, names, sep, header_lines, lineno)
                if plain is not None:
                    frame, good_lines, lineno = plain
                    rejected = []
                else:
                    body, good_lines, rejected, lineno = _check_lines(
                        src, data, sep, n_fields, header_lines, lineno
                    )
                good = None
            rej = _rejection_frame(rejected)
            if plain is not None:
                frame = frame.rename(rename).with_columns(
                    _line=pl.Series(good_lines, dtype=pl.Int64)
                )
                frame = _frame_from_header(src, frame)
            elif len(good_lines):
                try:
                    frame = _parse_body(body, names, sep)
                except pl.exceptions.ComputeError:  # an unbalanced quote
                    frame = None
                if frame is None or frame.height != len(good_lines):
                    # Quoting that the line split did not foresee: one line at a time.
                    if good is None:
                        good = [ln.removesuffix(b"\r") for ln in body.split(b"\n")[:-1]]
                    frame = _parse_lines_slow(good, names, sep)
                frame = frame.rename(rename).with_columns(
                    _line=pl.Series(good_lines, dtype=pl.Int64)
                )
                frame = _frame_from_header(src, frame)
            else:
                frame = None
            if frame is not None or rej.height:
                if frame is None:
                    frame = _empty_canonical(src)
                yield frame, rej, len(good_lines) + len(rejected)
            if not block:
                break


# bytes.strip()'s whitespace: a line of nothing else is blank (skipped, not a row)
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True


def _check_lines(src: Source, data: bytes, sep: str, n_fields: int, header_lines: int, lineno):
    """The lines of a decoded UTF-8 chunk checked as arrays (no Python work per line): blank
    lines and the header skipped, a row with the wrong number of fields rejected with its line,
    trailing separators dropped. Only lines with quotes or the wrong count are looked at one by
    one. -> (UTF-8 body of the good lines, their line numbers, rejections, last line number)."""
    if not data:  # (a chunk boundary at the very end of a file): no line at all
        return b"", np.empty(0, np.int64), [], lineno
    if not data.endswith(b"\n"):
        data += b"\n"
    arr = np.frombuffer(data, dtype=np.uint8)
    sepb = ord(sep)
    # Newlines and separators found in one pass over the bytes (a third of the time of one
    # pass each and a search): a line's field count is one more than the separators between
    # its newline and the one before.
    mark = arr == 10
    mark |= arr == sepb
    pos = np.flatnonzero(mark)
    del mark
    k = np.flatnonzero(arr[pos] == 10)
    ends = pos[k]  # each line is [start, end]: its newline included
    count = np.diff(k, prepend=-1)
    del pos, k
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    numbers = np.arange(lineno + 1, lineno + 1 + len(ends), dtype=np.int64)
    lineno += len(ends)
    # A blank line has one field; when a field count of 1 is right, or the separator is itself
    # whitespace, blank lines are found here, else among the wrong counts below.
    dense = n_fields == 1 or sep.isspace()
    blank = _per_line(~_WHITESPACE[arr], ends) == 0 if dense else np.zeros(len(ends), bool)
    cr = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == 13)
    stop = ends - cr  # end of the line's text
    last = arr[np.maximum(stop - 1, 0)]
    row = ~blank & (numbers > header_lines)
    quoted = _per_line(arr == 34, ends) > 0 if b'"' in data else np.zeros(len(ends), dtype=bool)
    plain = row & ~quoted
    good = plain & (count == n_fields)
    # One trailing separator (a spreadsheet's habit on every line): an empty extra field, cut.
    trail1 = plain & (count == n_fields + 1) & (stop > starts) & (last == sepb)
    cut = [stop[trail1] - 1]
    good |= trail1
    rejected = []
    sepbytes = sep.encode()
    for i in np.flatnonzero(row & ~good).tolist():
        line = data[starts[i] : stop[i]]
        if not line.strip():
            continue
        n = (
            len(next(csv.reader([line.decode("utf-8")], delimiter=sep)))
            if quoted[i]
            else int(count[i])
        )
        if n > n_fields and line.endswith(sepbytes * (n - n_fields)):
            cut.append(np.arange(stop[i] - (n - n_fields), stop[i]))
            n = n_fields
        if n != n_fields:
            rejected.append(
                (int(numbers[i]), "", _short(line), _ragged(src, n, n_fields), "wrong_field_count")
            )
            continue
        good[i] = True
    skip = 0 if good[0] else int(np.argmax(good)) if good.any() else len(good)
    if not len(cut) > 1 and not trail1.any() and good[skip:].all():
        # Only leading lines left out (the header, in the first chunk): a slice, not a mask.
        body = data[starts[skip] :] if skip < len(good) else b""
    else:
        keep = np.repeat(good, ends - starts + 1)
        cuts = np.concatenate(cut)
        if len(cuts):
            keep[cuts] = False
        body = arr[keep].tobytes()
    rejected.sort()
    return body, numbers[good], rejected, lineno


def _plain_chunk(data: bytes, names: list[str], sep: str, header_lines: int, lineno: int):
    """A chunk whose every line (after the header) has exactly the header's fields, no quote,
    no blank line and no trailing separator, the usual chunk, parsed without looking at its
    lines one by one: polars refuses a line with more fields than the header's
    (truncate_ragged_lines=False), so when the separators add up to exactly (fields - 1) a
    line, no line has fewer either. -> (frame, line numbers, last line number), or None for
    any other chunk (then _check_lines finds the lines at fault and names them)."""
    n_fields = len(names)
    # One field a line, or a blank separator: a blank line has the right count there.
    if n_fields < 2 or sep.isspace() or not data.endswith(b"\n") or b'"' in data:
        return None
    arr = np.frombuffer(data, dtype=np.uint8)  # (counted as arrays: faster than bytes.count)
    n_lines = int(np.count_nonzero(arr == 10))
    skip = max(0, header_lines - lineno)  # the header's lines, in the first chunk
    if skip >= n_lines:
        return None
    start = 0
    for _ in range(skip):
        start = data.index(b"\n", start) + 1
    body = data[start:] if start else data
    rows = n_lines - skip
    if int(np.count_nonzero(arr[start:] == ord(sep))) != rows * (n_fields - 1):
        return None
    try:
        frame = _parse_body(body, names, sep, ragged=False)
    except pl.exceptions.PolarsError:  # a line with too many fields (or a schema surprise)
        return None
    if frame.height != rows:
        return None
    numbers = np.arange(lineno + skip + 1, lineno + n_lines + 1, dtype=np.int64)
    return frame, numbers, lineno + n_lines


def _per_line(mask: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """How many bytes of each line (ending at `ends`, its newline) the mask holds."""
    return np.diff(np.searchsorted(np.flatnonzero(mask), ends, side="right"), prepend=0)


def _check_lines_slow(
    src: Source, data: bytes, encoding: str, sep: str, n_fields, header_lines, lineno
):
    """A chunk that holds a line not valid in its encoding: line by line, each damaged line
    rejected on its own. -> (good lines as UTF-8, their numbers, rejections, last number)."""
    utf8 = encoding == "utf-8-sig"
    sepb = sep.encode()
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    good, good_lines, rejected = [], [], []
    for raw in raw_lines:
        lineno += 1
        if lineno <= header_lines:
            continue
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line.strip():
            continue
        if not line.isascii():  # ASCII is the same in UTF-8 and GB18030
            try:
                text = line.decode(encoding)
            except UnicodeDecodeError as exc:
                rejected.append(
                    (
                        lineno,
                        "",
                        repr(line[max(0, exc.start - 8) : exc.start + 8]),
                        f"not valid {src.encoding} text (byte 0x{line[exc.start]:02x}"
                        f" at column {exc.start + 1}); truncated or mixed encoding?",
                        "bad_encoding",
                    )
                )
                continue
            if not utf8:
                line = text.encode("utf-8")
        count = (
            line.count(sepb) + 1
            if b'"' not in line
            else len(next(csv.reader([line.decode("utf-8")], delimiter=sep)))
        )
        if count > n_fields and line.endswith(sepb * (count - n_fields)):
            line = line[: n_fields - count]  # trailing separators: empty extra fields
            count = n_fields
        if count != n_fields:
            rejected.append(
                (lineno, "", _short(line), _ragged(src, count, n_fields), "wrong_field_count")
            )
            continue
        good.append(line)
        good_lines.append(lineno)
    return good, good_lines, rejected, lineno


def _parse_body(body: bytes, names: list[str], sep: str, ragged: bool = True) -> pl.DataFrame:
    # The bytes themselves, not a BytesIO over them: polars then reads them in place, in
    # parallel (87 -> 48 ms wall a 64 MiB chunk, measured with bench/registers.py's long CSV).
    return pl.read_csv(
        body,
        has_header=False,
        new_columns=names,
        separator=sep,
        infer_schema=False,
        truncate_ragged_lines=ragged,
    ).select(names)


def _parse_lines_slow(lines: list[bytes], names: list[str], sep: str) -> pl.DataFrame:
    rows = [next(csv.reader([ln.decode("utf-8")], delimiter=sep)) for ln in lines]
    rows = [(r + [None] * len(names))[: len(names)] for r in rows]
    return pl.DataFrame(rows, schema=dict.fromkeys(names, pl.String), orient="row")
