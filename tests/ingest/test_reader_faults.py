"""Files that used to crash `lianxin import` (and made `watch` crash-loop): each is now read, or
refused with a message naming the file and what is wrong, never a traceback."""

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lianxin.cli import main
from lianxin.ingest.models import ImportRun, Rejection
from lianxin.ingest.pipeline import import_file
from lianxin.ingest.readers import Options
from lianxin.ingest.readers.spreadsheet import MAX_SHARED_STRINGS
from lianxin.store import open_stores

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "ingest"


@pytest.fixture
def home(tmp_path, settings):
    settings.LIANXIN_HOME = tmp_path
    settings.TIME_ZONE = "Asia/Shanghai"
    return tmp_path


def opts():
    return Options(time_zone="Asia/Shanghai")


def refused(path, capsys, message):
    assert main(["import", str(path)]) == 1
    out = capsys.readouterr()
    assert f"{path}: FAILED:" in out.out
    assert message in out.out
    assert "Traceback" not in out.out + out.err
    assert ImportRun.objects.get().status == "failed"


def test_payments_in_the_documented_minimal_shape_are_accepted(home, tmp_path):
    # The reader's own error message lists payments as (户号, 缴费时间, 缴费金额): no channel.
    import_file(FIXTURES / "sgcc_load_curve_kw_gbk.csv", opts(), register_unknown=True)
    path = tmp_path / "payments.csv"
    path.write_text("户号,缴费时间,缴费金额\n3000000001,2024-03-02 09:30:00,50\n", encoding="gbk")
    res = import_file(path, opts())
    assert not res.error
    assert res.written["payments"].accepted == 1
    pay = open_stores(home).payments.read(["3000000001"])
    assert pay["amount"].to_list() == [50.0] and pay["channel"].to_list() == [""]
    assert pay["ts"][0] == datetime(2024, 3, 2, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["+08:00", "+08"])
def test_parquet_timestamps_with_a_fixed_offset_are_read_as_the_instants_they_are(
    home, tmp_path, zone
):
    path = tmp_path / "offset.parquet"
    instants = [datetime(2024, 3, 1, 0, 0, tzinfo=UTC), datetime(2024, 3, 1, 0, 15, tzinfo=UTC)]
    ts = pa.array(instants, type=pa.timestamp("us", tz=zone))  # Arrow keeps UTC instants
    pq.write_table(pa.table({"meter": ["M1", "M1"], "ts": ts, "value": [0.1, 0.2]}), path)
    res = import_file(path, opts(), register_unknown=True)
    assert not res.error and res.total().accepted == 2
    assert open_stores(home).readings.read(["M1"])["ts"].to_list() == instants


def test_parquet_list_column_is_refused_by_name(home, tmp_path, capsys):
    path = tmp_path / "lists.parquet"
    table = pa.table({"meter": ["M1"], "ts": ["2024-03-01 00:00"], "value": [[0.1, 0.2]]})
    pq.write_table(table, path)
    refused(path, capsys, "column 'value' holds list<element: double> (several values per cell)")


def _xlsx_bomb(path: Path, expands_to: int) -> None:
    """A small workbook whose shared strings declare `expands_to` bytes (deflate of one run)."""
    wb = openpyxl.Workbook()
    wb.active.append(["meter", "ts", "value"])
    wb.active.append(["M1", "2024-03-01 00:00:00", "x"])
    buf = io.BytesIO()
    wb.save(buf)
    original = zipfile.ZipFile(buf)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in original.infolist():
            if info.filename != "xl/sharedStrings.xml":
                zf.writestr(info.filename, original.read(info.filename))
        with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
            fh.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
            fh.write(b"<si><t>meter</t></si><si><t>ts</t></si><si><t>value</t></si><si><t>")
            block = b"A" * (1 << 20)
            for _ in range(expands_to >> 20):
                fh.write(block)
            fh.write(b"</t></si></sst>")


def test_xlsx_whose_shared_strings_expand_past_the_limit_is_refused_before_expanding(
    home, tmp_path, capsys
):
    path = tmp_path / "bomb.xlsx"
    _xlsx_bomb(path, MAX_SHARED_STRINGS + (1 << 20))
    assert path.stat().st_size < MAX_SHARED_STRINGS // 100  # small on disk
    refused(path, capsys, "XLSX part xl/sharedStrings.xml expands to")


def test_meter_number_over_32_characters_is_refused_for_what_it_is(home, tmp_path, capsys):
    path = tmp_path / "long.csv"
    path.write_text(f"meter,ts,value\nOK1,2024-03-01 00:00,0.1\n{'9' * 40},2024-03-01 00:00,0.2\n")
    assert main(["import", "--register-unknown", str(path)]) == 0
    out = capsys.readouterr().out
    assert "longer than 32 characters: not a meter number" in out
    assert "--register-unknown" not in out  # no advice that cannot help
    rejection = Rejection.objects.get()
    assert (rejection.line, rejection.field, rejection.code) == (3, "meter", "bad_meter")
    assert open_stores(home).readings.read().height == 1


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_csv_with_a_byte_order_mark_is_read(home, tmp_path, capsys, encoding):
    path = tmp_path / "readings.csv"
    text = "表号,时间,值\nM1,2024-03-01 08:00,0.1\nM1,2024-03-01 08:15,0.2\n"
    body = text.encode(encoding)
    if encoding == "utf-16-be":
        body = b"\xfe\xff" + body  # utf-16-be writes no BOM of its own
    path.write_bytes(body)
    assert main(["import", "--register-unknown", str(path)]) == 0
    assert "csv, UTF-16" in capsys.readouterr().out
    df = open_stores(home).readings.read(["M1"])
    assert df["value"].to_list() == [0.1, 0.2]
    assert df["ts"][0] == datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    assert not list(Path(tmp_path).glob("lianxin-utf16-*"))


def test_utf16_csv_that_is_not_utf16_names_where(home, tmp_path, capsys):
    path = tmp_path / "broken.csv"
    path.write_bytes("meter,ts,value\n".encode("utf-16") + b"\x00\xdc\x41\x00")  # lone surrogate
    refused(path, capsys, "declares UTF-16 (byte-order mark) but is not valid UTF-16")


def test_readings_are_judged_by_one_limit_per_unit_and_interval(home, tmp_path):
    # A 96-point curve's quarter-hour and a long file's reading of unknown interval (an hour at
    # most) meet the same limit per hour: 100 kW.
    path = tmp_path / "long.csv"
    path.write_text(
        "meter,ts,value,unit\n"
        "M1,2024-03-01 00:00,99,kWh\n"
        "M1,2024-03-01 01:00,101,kWh\n"
        "M1,2024-03-01 02:00,9,m3\n"
        "M1,2024-03-01 03:00,11,m3\n"
        "M1,2024-03-01 04:00,1,furlongs\n"
    )
    res = import_file(path, opts(), register_unknown=True)
    assert res.rejected == {"absurd": 2, "unknown_unit": 1}
    unit = Rejection.objects.get(code="unknown_unit")
    assert (unit.line, unit.field, unit.value) == (6, "unit", "furlongs")
    assert sorted(open_stores(home).readings.read()["value"].to_list()) == [9.0, 99.0]


def test_naive_timestamps_follow_lianxin_time_zone(home, tmp_path, monkeypatch):
    monkeypatch.setenv("LIANXIN_TIME_ZONE", "Europe/London")
    path = tmp_path / "long.csv"
    path.write_text("meter,ts,value\nM1,2024-07-01 08:00,0.1\n")
    res = import_file(path, Options(), register_unknown=True)  # the default: the deployment's
    assert res.total().accepted == 1
    ts = open_stores(home).readings.read(["M1"])["ts"][0]
    assert ts == datetime(2024, 7, 1, 7, 0, tzinfo=UTC)  # BST, UTC+1


def test_the_readers_keep_no_copy_of_the_contract():
    src = Path(__file__).resolve().parents[2] / "src" / "lianxin"
    for path in src.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "meterdata.py":
            assert '"Asia/Shanghai"' not in text, path


def test_xlsx_whose_one_long_shared_string_fills_every_cell_is_refused_before_reading(
    home, tmp_path, capsys
):
    # The sheet is parsed into memory with each shared string copied into every cell naming
    # it: 8,000 cells of one 8 MiB string would take 64 GB, from a file of some kilobytes.
    wb = openpyxl.Workbook()
    buf = io.BytesIO()
    wb.save(buf)
    original = zipfile.ZipFile(buf)
    ns = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rows = [b'<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>']
    rows += [b'<row><c t="s"><v>2</v></c><c t="s"><v>2</v></c></row>'] * 4000
    path = tmp_path / "copies.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in original.infolist():
            data = original.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = b"<worksheet " + ns + b"><sheetData>" + b"".join(rows)
                data += b"</sheetData></worksheet>"
            zf.writestr(info.filename, data)
        zf.writestr(
            "xl/sharedStrings.xml",
            b"<sst "
            + ns
            + b"><si><t>meter</t></si><si><t>value</t></si><si><t>"
            + b"A" * (8 << 20)
            + b"</t></si></sst>",
        )
    assert path.stat().st_size < 1 << 20
    refused(path, capsys, "with shared strings of up to")
