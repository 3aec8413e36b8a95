"""Opening a file: the container (Parquet, XLSX, text) from its first bytes."""

from __future__ import annotations

import codecs
from pathlib import Path

from lianxin.ingest.readers.common import FileError, Options
from lianxin.ingest.readers.parquet import _open_parquet
from lianxin.ingest.readers.source import Source
from lianxin.ingest.readers.spreadsheet import _open_xlsx
from lianxin.ingest.readers.text import _open_text, _open_utf16


def open_source(path: Path | str, options: Options | None = None) -> Source:
    """Sniff a file and return a Source ready to stream; raise FileError if it cannot be read."""
    path = Path(path)
    options = options or Options()
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError as exc:
        raise FileError(f"{path}: cannot open: {exc.strerror}") from exc
    if not head:
        raise FileError(f"{path}: the file is empty")
    if head.startswith(b"PAR1"):
        return _open_parquet(path, options)
    if head.startswith(b"PK\x03\x04"):
        return _open_xlsx(path, options)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _open_utf16(path, options)  # its NUL bytes are text, declared by the BOM
    if b"\x00" in head[:8192]:
        raise FileError(
            f"{path}: binary data, not a CSV, XLSX or Parquet file "
            f"(NUL byte at offset {head.index(0)})"
        )
    return _open_text(path, head, options)
