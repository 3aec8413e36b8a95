"""`lianxin import` with files that look like real State Grid exports (tests/data/ingest/, made by
tests/data/make_ingest_fixtures.py): the right readings land in the store, at the right times,
and everything refused is kept with file, line, field, value and reason."""

import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from lianxin.care.models import Feeder, Household, Meter, TransformerArea
from lianxin.cli import main
from lianxin.ingest.models import ImportRun, Rejection
from lianxin.ingest.pipeline import import_file
from lianxin.ingest.readers import Options
from lianxin.store import open_stores
from lianxin.store.wake import registry_stamp

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "ingest"
SHANGHAI = ZoneInfo("Asia/Shanghai")
METER1 = "3330001000000000000001"
METER4 = "3330001000000000000004"


@pytest.fixture
def home(tmp_path, settings):
    settings.LIANXIN_HOME = tmp_path
    settings.TIME_ZONE = "Asia/Shanghai"
    return tmp_path


def opts(**kw):
    return Options(time_zone="Asia/Shanghai", **kw)


def readings(home, meter=None, unit="kWh"):
    df = open_stores(home).readings.read([meter] if meter else None)
    return df.filter(pl.col("unit") == unit)


def local(*args):
    return datetime(*args, tzinfo=SHANGHAI)


def test_gbk_power_curve_with_register_unknown(home, capsys):
    assert main(["import", "--register-unknown", str(FIXTURES / "sgcc_load_curve_kw_gbk.csv")]) == 0
    out = capsys.readouterr().out
    assert "96-point load curve, csv, GB18030" in out
    assert "kW average power" in out
    assert "accepted 1,152" in out
    # Meters, households and transformer areas come from the export's own columns.
    meter = Meter.objects.get(number=METER1)
    assert meter.account_number == "3000000001"
    assert meter.household.code == "3000000001"
    assert meter.household.address == "眉山市东坡区苏祠路12号1单元"
    assert meter.household.transformer_area.code == "0512000101"
    assert meter.household.transformer_area.name == "东坡区苏祠社区1号台区"
    assert TransformerArea.objects.count() == 2
    df = readings(home, METER1)
    assert df.height == 192
    # 0:15 is the quarter-hour 00:00-00:15 local, stored at its start; 24:00 is 23:45-24:00.
    first, last = df.row(0, named=True), df.row(95, named=True)
    assert first["ts"] == local(2024, 3, 1, 0, 0).astimezone(UTC)
    assert last["ts"] == local(2024, 3, 1, 23, 45).astimezone(UTC)
    # kW average over 15 minutes -> kWh = kW / 4: the file's 0.4820 kW is 0.1205 kWh (the real
    # London reading of 0.241 kWh for the half hour, split in two quarter-hours).
    assert "0.4820" in (FIXTURES / "sgcc_load_curve_kw_gbk.csv").read_text(encoding="gbk")
    assert first["value"] == pytest.approx(0.1205)


def test_unknown_meters_are_quarantined_not_guessed(home, capsys):
    path = FIXTURES / "sgcc_load_curve_kw_gbk.csv"
    assert main(["import", str(path)]) == 0
    out = capsys.readouterr().out
    assert "unknown_meter" in out and "--register-unknown" in out
    assert Meter.objects.count() == 0
    assert open_stores(home).readings.read().height == 0
    run = ImportRun.objects.get()
    assert run.rejected_by_reason == {"unknown_meter": 12}
    rej = Rejection.objects.filter(run=run).order_by("line").first()
    assert (rej.line, rej.field, rej.value) == (3, "表号", METER1)
    # The quarantine file keeps every rejected row too.
    q = pl.read_parquet(run.quarantine_file)
    assert q.height == 12 and q["line"].to_list() == list(range(3, 15))
    # ... and the readings of those rows, so nothing is lost if the source file goes away.
    held = pl.read_parquet(run.quarantine_file.replace(".parquet", "-readings.parquet"))
    assert held.height == 12 * 96
    assert held.columns == ["_line", "meter", "ts", "value", "unit"]


def test_known_meters_only_and_reimport_is_duplicate_then_correction(home, tmp_path):
    main(["import", "--register-unknown", str(FIXTURES / "sgcc_load_curve_kw_gbk.csv")])
    again = import_file(FIXTURES / "sgcc_load_curve_kw_gbk.csv", opts())
    assert again.total().duplicate == 1152 and again.total().accepted == 0
    # The same readings as energy, one value corrected.
    src = (FIXTURES / "sgcc_load_curve_kw_gbk.csv").read_bytes().decode("gbk")
    lines = src.split("\r\n")
    cells = lines[2].split(",")
    cells[7] = "8.0000"  # 0:15 of meter 1 on 3-01: 8 kW -> 2 kWh
    lines[2] = ",".join(cells)
    fixed = tmp_path / "corrected.csv"
    fixed.write_bytes("\r\n".join(lines).encode("gbk"))
    res = import_file(fixed, opts())
    assert (res.total().replaced, res.total().duplicate) == (1, 1151)
    latest = readings(home, METER1).row(0, named=True)
    assert latest["value"] == 2.0
    history = open_stores(home).readings.read([METER1], all_versions=True)
    assert history.filter(pl.col("ts") == latest["ts"]).height == 2


def test_utf8_p96_per_row_unit_and_xlsx_dian96_match_the_gbk_curve(home):
    import_file(FIXTURES / "sgcc_load_curve_kw_gbk.csv", opts(), register_unknown=True)
    before = open_stores(home).readings.read()
    p96 = import_file(FIXTURES / "sgcc_load_curve_kwh_p96_utf8.csv", opts())
    assert p96.description.startswith("96-point load curve, csv, UTF-8")
    # Same readings given as energy: all duplicates; the blank P41 is a gap, not an error.
    assert (p96.total().duplicate, p96.total().accepted, sum(p96.rejected.values())) == (287, 0, 0)
    xlsx = import_file(FIXTURES / "sgcc_load_curve_kwh_dian96.xlsx", opts())
    assert "xlsx" in xlsx.description and "kWh" in xlsx.description
    assert xlsx.total().duplicate == 288 and not xlsx.rejected
    assert open_stores(home).readings.read().equals(before)


def test_encoding_is_detected_not_assumed(home, tmp_path):
    gbk = FIXTURES / "sgcc_load_curve_kw_gbk.csv"
    utf8 = tmp_path / "same_in_utf8.csv"
    utf8.write_text(gbk.read_bytes().decode("gbk"), encoding="utf-8")
    a = import_file(gbk, opts(), register_unknown=True)
    b = import_file(utf8, opts())
    assert "GB18030" in a.description and "UTF-8" in b.description
    assert b.total().duplicate == 1152


def test_malformed_file_each_problem_named(home, capsys):
    import_file(FIXTURES / "sgcc_load_curve_kw_gbk.csv", opts(), register_unknown=True)
    code = main(["import", str(FIXTURES / "malformed_load_curve_gbk.csv")])
    assert code == 0  # some rows were read
    out = capsys.readouterr().out
    print(out)
    run = ImportRun.objects.latest("id")
    got = {r.line: (r.field, r.value, r.code) for r in Rejection.objects.filter(run=run)}
    assert got[4][2] == "wrong_field_count"
    assert got[5][2] == "wrong_field_count"
    assert got[6] == ("2:45", "-0.5", "negative")
    assert got[7] == ("5:15", "9999", "absurd")
    assert got[8] == ("数据日期", "2099-01-01", "future")
    assert got[9] == ("数据日期", "2024-02-30", "bad_date")
    assert got[10][0] == "表号" and got[10][2] == "missing"
    assert got[11][2] == "wrong_field_count"  # "1,2": a stray comma makes 97 points
    assert got[12] == ("15:15", "abc", "not_a_number")
    assert got[13][2] == "wrong_field_count"  # truncated line
    assert got[14][2] == "bad_encoding"
    assert 3 not in got
    assert "row has 95 point values, expected 96" in out
    assert "row has 97 point values, expected 96" in out
    assert "malformed_load_curve_gbk.csv:6 field 2:45 value '-0.5': negative value" in out
    # The good points of partly bad rows are kept: line 3 whole, lines 6, 7, 12 less one point.
    assert run.duplicate == 96 + 3 * 95


GARBAGE = {
    "binary.csv": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
    "empty.csv": (b"", "the file is empty"),
    # UTF-16 with its byte-order mark is read (see test_reader_faults); its columns judged.
    "utf16_header_only.csv": ("表号,数据日期\n".encode("utf-16"), "wrong columns"),
    "wrong_columns.csv": ("姓名,年龄,电话\n张三,80,123\n".encode("gbk"), "no header row"),
    "not_a_meter_file.csv": ("表号,户号,备注\n1,2,3\n".encode("gbk"), "wrong columns"),
    "no_unit.csv": (
        (",".join(["表号", "数据日期", *[f"P{k}" for k in range(1, 97)]]) + "\n").encode(),
        "--unit kWh or --unit kW",
    ),
    "points95.csv": (
        (",".join(["表号", "数据日期", *[f"P{k}" for k in range(1, 96)]]) + "\n").encode(),
        "95 point columns (P1 … P95): a day has 96",
    ),
    "points97.csv": (
        (",".join(["表号", "数据日期", *[f"点{k}" for k in range(1, 98)]]) + "\n").encode(),
        "97 point columns",
    ),
    "truncated.xlsx": (b"PK\x03\x04\x14\x00\x00\x00garbage", "not a readable XLSX"),
    "truncated.parquet": (b"PAR1\x00\x01\x02", "not a readable Parquet"),
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_files_get_a_clear_message_and_exit_1(home, tmp_path, capsys, name):
    body, message = GARBAGE[name]
    path = tmp_path / name
    path.write_bytes(body)
    assert main(["import", str(path)]) == 1
    out = capsys.readouterr()
    assert f"{path}: FAILED:" in out.out
    assert message in out.out
    assert "nothing could be read" in out.err
    assert "Traceback" not in out.out + out.err
    assert ImportRun.objects.get().status == "failed"


def test_truncated_parquet_after_valid_rows(home, tmp_path):
    df = pl.DataFrame({"meter": ["m"] * 10, "ts": ["2024-03-01 00:00"] * 10, "value": [1.0] * 10})
    path = tmp_path / "cut.parquet"
    df.write_parquet(path)
    path.write_bytes(path.read_bytes()[:-30])
    res = import_file(path, opts())
    assert "not a readable Parquet file" in res.error


def test_frozen_registers_give_daily_energy_across_files(home, tmp_path):
    src = (FIXTURES / "frozen_registers_gbk.csv").read_bytes().decode("gbk").split("\r\n")
    header, rows = src[0], [r for r in src[1:] if r]
    first = tmp_path / "regs_a.csv"
    second = tmp_path / "regs_b.csv"
    first.write_bytes(
        "\r\n".join([header, *[r for r in rows if "03-01" in r or "03-02" in r]]).encode("gbk")
    )
    second.write_bytes(
        "\r\n".join([header, *[r for r in rows if not ("03-01" in r or "03-02" in r)]]).encode(
            "gbk"
        )
    )
    a = import_file(first, opts(), register_unknown=True)
    assert "daily frozen registers" in a.description
    b = import_file(second, opts())
    assert b.written["daily energy"].accepted == 8  # 3 meters x 3 day pairs, less one reset
    daily = readings(home, METER1, unit="kWh/d")
    assert daily["value"].round(6).to_list() == [4.2, 5.2, 6.2, 7.2]
    assert daily["ts"][0] == local(2024, 3, 1).astimezone(UTC)
    assert b.rejected == {"register_down": 1}
    regs = readings(home, METER1, unit="kWh reg")
    assert regs["value"].to_list()[0] == 1000.0


def test_events_payments_balances(home):
    import_file(FIXTURES / "sgcc_load_curve_kw_gbk.csv", opts(), register_unknown=True)
    stores = open_stores(home)
    ev = import_file(FIXTURES / "meter_events_gbk.csv", opts())
    assert ev.written["events"].accepted == 6
    assert ev.rejected == {"bad_event": 1}
    events = stores.events.read([METER1])
    assert events["event"].to_list() == ["power_off", "power_on"]
    assert events["ts"][0] == local(2024, 3, 1, 21, 40, 5).astimezone(UTC)
    assert set(stores.events.read()["event"]) == {
        "power_off",
        "power_on",
        "voltage_out_of_range",
        "relay_open",
        "tamper",
        "comm_loss",
    }
    pay = import_file(FIXTURES / "payments_gbk.csv", opts())
    assert pay.written["payments"].accepted == 2 and pay.rejected == {"negative": 1}
    assert stores.payments.read(["3000000001"])["channel"].to_list() == ["微信"]
    bal = import_file(FIXTURES / "balances_gbk.csv", opts())
    assert bal.written["balances"].accepted == 2 and bal.rejected == {"not_a_number": 1}
    assert sorted(stores.balances.read()["balance"].to_list()) == [-3.5, 35.2]


def test_topology_updates_the_care_models(home, django_capture_on_commit_callbacks):
    area = TransformerArea.objects.create(code="OLD", name="old")
    hh = Household.objects.create(code="3000000001", address="x", transformer_area=area)
    Meter.objects.create(number=METER1, account_number="3000000001", household=hh)
    res = import_file(FIXTURES / "topology_gbk.csv", opts())
    assert res.topology_updated == 1
    assert res.rejected == {"unknown_meter": 5, "missing": 1}
    hh.refresh_from_db()
    assert hh.transformer_area.code == "0512000101"
    assert hh.transformer_area.feeder == Feeder.objects.get(code="10kV苏祠线")
    # Moved back behind the importer's back, then moved again by the same file: a bulk update
    # sends no signal, so the import stamps the registry itself (a running monitor judges the
    # home in its new area at its next step, not at its periodic re-read).
    Household.objects.filter(pk=hh.pk).update(transformer_area=area)
    before = registry_stamp(home)
    with django_capture_on_commit_callbacks(execute=True):
        import_file(FIXTURES / "topology_gbk.csv", opts())
    assert registry_stamp(home) != before
    res = import_file(FIXTURES / "topology_gbk.csv", opts(), register_unknown=True)
    assert Meter.objects.count() == 6
    assert Household.objects.get(code="3000000004").transformer_area.code == "0512000102"


def test_round_trip_real_household_data(home, tmp_path):
    """Real London data (LCL): long Parquet in, export-readings out, the same readings back."""
    src = Path(__file__).resolve().parent.parent / "data" / "lcl_sample.parquet"
    original = pl.read_parquet(src)
    res = import_file(src, Options(time_zone="UTC"), register_unknown=True)
    assert not res.error and not res.rejected, res.lines()
    assert res.total().accepted == original.height
    assert Meter.objects.count() == original["household_id"].n_unique()
    out = tmp_path / "export.parquet"
    assert main(["export-readings", "--out", str(out)]) == 0
    back = pl.read_parquet(out)
    assert back.columns == [
        "meter",
        "account",
        "household",
        "ts",
        "value",
        "unit",
        "kind",
        "received_at",
    ]
    assert str(back.schema["ts"]) == "Datetime(time_unit='us', time_zone='Asia/Shanghai')"
    got = back.select(
        household_id=pl.col("household"),
        ts=pl.col("ts").dt.convert_time_zone("UTC").dt.replace_time_zone(None),
        kwh=pl.col("value"),
    ).sort("household_id", "ts")
    assert got.equals(original.sort("household_id", "ts"))
    # CSV export: local time with its offset, filtered by meter and time.
    csv_out = tmp_path / "one.csv"
    main(
        [
            "export-readings",
            "--out",
            str(csv_out),
            "--meter",
            "MAC000002",
            "--from",
            "2013-01-08",
            "--to",
            "2013-01-09",
        ]
    )
    rows = pl.read_csv(csv_out)
    assert rows.height == 48
    assert rows["ts"][0] == "2013-01-08T00:00:00+08:00"


def test_long_csv_household_ids_and_ts_marking_end(home, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(
        "household_id,timestamp,kwh\nH1,2024-03-01 00:30,0.5\nH1,2024-03-01 01:00,0.7\n"
        "H1,2024-03-01 01:30,-1\nH2,not a time,0.1\n",
        encoding="utf-8",
    )
    res = import_file(path, opts(ts_marks="end", interval_minutes=30), register_unknown=True)
    assert res.total().accepted == 2
    assert res.rejected == {"negative": 1, "bad_timestamp": 1}
    df = readings(home, "H1")
    assert df["ts"].to_list() == [
        local(2024, 3, 1, 0, 0).astimezone(UTC),
        local(2024, 3, 1, 0, 30).astimezone(UTC),
    ]


def test_watch_folder_imports_settled_files(home, tmp_path):
    from lianxin.commands.watch import poll

    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(FIXTURES / "sgcc_load_curve_kw_gbk.csv", drop / "a.csv")
    (drop / "junk.csv").write_bytes(b"\x00\x01\x02")
    (drop / ".incoming.csv.part").write_text("still copying")
    seen = {}
    assert poll(drop, seen, opts(), register_unknown=True) == 0  # first sight: wait to settle
    assert poll(drop, seen, opts(), register_unknown=True) == 2
    assert (drop / "done" / "a.csv").exists()
    assert "accepted 1,152" in (drop / "done" / "a.csv.summary.txt").read_text()
    assert (drop / "failed" / "junk.csv").exists()
    assert (drop / ".incoming.csv.part").exists()
    assert readings(home).height == 1152


def test_naive_times_are_local_in_the_configured_zone_even_across_dst(home, tmp_path):
    path = tmp_path / "london.csv"
    path.write_text(
        "meter,ts,value\nL1,2024-03-31 00:30,0.1\nL1,2024-03-31 01:30,0.2\n"
        "L1,2024-03-31 02:30,0.3\nL1,2024-07-01 12:00+08:00,0.4\n",
        encoding="utf-8",
    )
    res = import_file(path, Options(time_zone="Europe/London"), register_unknown=True)
    # 01:30 does not exist in London that night (clocks jump from 01:00 to 02:00).
    assert res.rejected == {"bad_timestamp": 1}
    got = readings(home, "L1")["ts"].to_list()
    assert got == [
        datetime(2024, 3, 31, 0, 30, tzinfo=UTC),  # GMT
        datetime(2024, 3, 31, 1, 30, tzinfo=UTC),  # 02:30 BST
        datetime(2024, 7, 1, 4, 0, tzinfo=UTC),  # an explicit offset wins
    ]


def test_register_unknown_refuses_what_cannot_be_a_meter_number(home, tmp_path):
    path = tmp_path / "long.csv"
    long_number = "9" * 40
    path.write_text(
        f"meter,ts,value\nOK1,2024-03-01 00:00,0.1\n{long_number},2024-03-01 00:00,0.2\n"
    )
    res = import_file(path, opts(), register_unknown=True)
    assert res.total().accepted == 1
    # Refused for what it is, not as an unknown meter that --register-unknown would take in.
    assert res.rejected == {"bad_meter": 1}
    assert not Meter.objects.filter(number=long_number).exists()
    assert open_stores(home).readings.read().height == 1


def test_held_records_of_unknown_meters_import_once_registered(home):
    first = import_file(FIXTURES / "sgcc_load_curve_kw_gbk.csv", opts())
    assert first.total().accepted == 0 and len(first.held_files) == 1
    import_file(FIXTURES / "topology_gbk.csv", opts(), register_unknown=True)  # meters now exist
    replay = import_file(first.held_files[0], opts())
    assert replay.total().accepted == 1152 and not replay.rejected
    again = import_file(FIXTURES / "sgcc_load_curve_kw_gbk.csv", opts())
    assert again.total().duplicate == 1152  # the replayed readings are the file's readings
