"""Fuzzing the file readers (hypothesis): whatever the bytes, no crash (only a FileError naming
the file), every data line is accounted for (stored or rejected), and every accepted reading is
in the store afterwards with the value and time its cell says."""

import csv
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lianxin.ingest.readers import FileError, Options, open_source
from lianxin.store import ReadingsStore

CLOCK = [f"{(k * 15) // 60}:{(k * 15) % 60:02d}" for k in range(1, 97)]
NOW = datetime(2024, 6, 1, tzinfo=UTC)

cell = st.one_of(
    st.floats(min_value=0, max_value=50, allow_nan=False).map(lambda v: f"{v:.3f}"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "-1", "abc", "1e400", "0", "NaN", "１２", "3.5kW", '"2"']),
    st.text(max_size=4),
)
row = st.tuples(
    st.sampled_from(["M1", "M2", "", "表-3", " M4 "]),
    st.sampled_from(["2024-03-01", "2024/3/2", "20240303", "2099-01-01", "2024-02-30", "x", ""]),
    st.lists(cell, min_size=94, max_size=98),
)


def _write(rows, encoding: str, crlf: bool) -> tuple[Path, list[tuple[int, list[str]]]]:
    header = ",".join(["表号", "数据日期", *CLOCK])
    lines = ["96点负荷曲线 kW", header]
    body = []
    for meter, day, cells in rows:
        cells = [c.replace(",", ";").replace("\n", " ").replace("\r", " ") for c in cells]
        lines.append(",".join([meter, day, *cells]))
        # What a CSV reader makes of the line is the truth the importer must match.
        body.append((len(lines), next(csv.reader([lines[-1]]))))
    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    fd, name = tempfile.mkstemp(suffix=".csv")
    with open(fd, "wb") as fh:
        fh.write(text.encode(encoding, errors="replace"))
    return Path(name), body


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(row, min_size=1, max_size=6),
    encoding=st.sampled_from(["utf-8", "gb18030"]),
    crlf=st.booleans(),
    chunk=st.sampled_from([200, 4096, 1 << 20]),
)
def test_fuzzed_load_curves(rows, encoding, crlf, chunk):
    path, body = _write(rows, encoding, crlf)
    with tempfile.TemporaryDirectory() as root:
        store = ReadingsStore(root)
        options = Options(time_zone="Asia/Shanghai", chunk_bytes=chunk, now=NOW)
        try:
            source = open_source(path, options)
            batches = list(source.batches())
        except FileError as exc:
            assert str(path) in str(exc)
            return
        finally:
            path.unlink()
        records = pl.concat([b.records for b in batches], how="diagonal_relaxed")
        rejections = pl.concat([b.rejections for b in batches])
        seen = set(records["_line"].to_list()) | set(rejections["line"].to_list())
        for line, cells in body:
            if any(c.strip() for c in cells[2:]) or not cells[0].strip():
                assert line in seen, (line, cells)
        if not records.height:
            return
        store.write(records.select("meter", "ts", "value", "unit"))
        back = store.read(None, NOW - timedelta(days=3650), NOW)
        # Every accepted reading is stored, with the value its cell says (kW / 4), at its time.
        # Where a meter has two rows for the same day, the later row wins (a correction).
        expected = records.unique(["meter", "ts"], keep="last").sort("meter", "ts")
        assert back.select("meter", "ts", "value").equals(expected.select("meter", "ts", "value"))
        lines = dict(body)
        tz = ZoneInfo("Asia/Shanghai")
        for r in records.head(50).iter_rows(named=True):
            cells = lines[r["_line"]]
            local = r["ts"].astimezone(tz)
            k = (local.hour * 60 + local.minute) // 15  # 0-based point index
            assert local.date() >= date(2000, 1, 1)
            assert float(cells[2 + k].strip()) / 4 == r["value"]


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=2000),
    prefix=st.sampled_from([b"", b"PAR1", b"PK\x03\x04", "表号,数据日期\n".encode()]),
)
def test_arbitrary_bytes_never_crash(data, prefix):
    fd, name = tempfile.mkstemp(suffix=".csv")
    with open(fd, "wb") as fh:
        fh.write(prefix + data)
    try:
        source = open_source(name, Options(unit="kWh"))
        list(source.batches())  # any exception but FileError fails the test
    except FileError as exc:
        assert name in str(exc)
    finally:
        Path(name).unlink()
