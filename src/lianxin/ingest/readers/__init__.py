"""File readers: utility exports in, store-shaped frames and per-row rejections out. No Django.

One entry point, `open_source(path, options)`, sniffs the container (Parquet, XLSX, text), the
text encoding (UTF-8 or GB18030 — a superset of GBK — tried in that order, never assumed), the
separator, the header row (a title line above it is allowed) and from the header which export it
is. `Source.batches()` then streams the file in chunks and yields `Batch`es: good records in the
shape of a store plus a frame of rejections (line, field, value, reason, code).

Time conventions (see also docs in lianxin.store):
- Naive timestamps and dates are local time in `options.time_zone`; stored as UTC.
- 96-point curves: point k (1..96) is the quarter-hour ENDING at k*15 minutes after local midnight
  of 数据日期, so `0:15`/P1/点1 covers 00:00-00:15 and `24:00`/P96/点96 covers 23:45-24:00 of that
  same day. The store keys readings by interval START: point k is stored at 00:00 + (k-1)*15 min.
  (An export labelled by interval start, `0:00 … 23:45` with no `24:00`, is read as such.)
- Long format: `ts` is the start of the interval unless `options.ts_marks == "end"`.
- Daily frozen registers (日冻结): the register value at local 00:00 of 数据日期.

Layout: `sniff` opens a file and tells the container; `text` (CSV/TSV), `spreadsheet` (XLSX) and
`parquet` read a container in chunks; `header` maps a header row to canonical columns and tells
the export kind; one module per export kind turns chunks into records: `curves` (96-point),
`registers` (daily frozen), `long` (long CSV/Parquet), `events`, `payments` (payments and
balances), `topology`; `common` holds the options, the batch and the row checks they share.
"""

from lianxin.ingest.readers.common import (
    REJECTION_SCHEMA,
    Batch,
    FileError,
    Options,
)
from lianxin.ingest.readers.header import ALIASES
from lianxin.ingest.readers.sniff import open_source
from lianxin.ingest.readers.source import Source

__all__ = [
    "ALIASES",
    "REJECTION_SCHEMA",
    "Batch",
    "FileError",
    "Options",
    "Source",
    "open_source",
]
