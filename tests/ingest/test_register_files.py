"""Interval register (示值) exports, as the acquisition system writes them (tests/data/ingest/
registers_*, made from real curves by tests/data/make_register_fixtures.py): the energy of each
interval is the difference of consecutive registers and equals the original curve's; gaps stay
gaps; the reverse register is export; rollovers, replacements and backwards steps are named."""

import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lianxin.cli import main
from lianxin.ingest.readers import Options, open_source
from lianxin.meterdata import interval_quantities
from lianxin.store import open_stores

DATA = Path(__file__).resolve().parent.parent / "data"
FIXTURES = DATA / "ingest"
SHANGHAI = ZoneInfo("Asia/Shanghai")
sys.path.insert(0, str(DATA))
from make_register_fixtures import series  # noqa: E402

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def homes():
    return series()


@pytest.fixture
def home(tmp_path, settings):
    settings.LIANXIN_HOME = tmp_path
    settings.TIME_ZONE = "Asia/Shanghai"
    return tmp_path


def stored(home, unit, meter=None):
    df = open_stores(home).readings.read([meter] if meter else None)
    return df.filter(pl.col("unit") == unit).sort("meter", "ts")


def curve(homes, i):
    """The original energy per quarter-hour of home i, keyed by the UTC start of the interval."""
    _meter, _account, points, energy = homes[i]
    return {points[k][0].replace(tzinfo=SHANGHAI).astimezone(UTC): e for k, e in enumerate(energy)}


def energy_of(home, meter, unit="kWh"):
    return dict(stored(home, unit, meter).select("ts", "value").iter_rows())


def run(capsys, *args):
    assert main(["import", "--register-unknown", *map(str, args)]) == 0
    return capsys.readouterr().out


def test_long_xlsx_round_trip_reverse_apart_and_reactive_ignored(home, homes, capsys):
    out = run(capsys, FIXTURES / "registers_long.xlsx")
    assert "interval registers (示值), xlsx" in out
    assert "used: 电能表资产编号 (meter)" in out and "日期 (time)" in out
    assert "正向有功总(kWh) (forward active register)" in out
    assert "ignored: 正向无功总(kvarh) (reactive energy, not used)" in out
    assert "interval energy accepted 1,152" in out and "export energy accepted 1,152" in out
    for i, (meter, *_rest) in enumerate(homes):
        got = energy_of(home, meter)
        want = curve(homes, i)
        assert got.keys() == want.keys()
        assert all(abs(got[t] - want[t]) < 1e-6 for t in want)
    # Meter 6 exports at midday; its use is still its own curve, and the engine never sees the
    # export as use.
    solar = homes[5][0]
    export = energy_of(home, solar, "kWh export")
    assert sum(export.values()) == pytest.approx(2 * 24 * 0.05)
    rows = open_stores(home).readings.read([solar])
    assert set(interval_quantities(rows)["unit"].unique()) == {"kWh"}


@pytest.mark.parametrize("name", ["registers_wide.csv", "registers_wide.xlsx"])
def test_wide_register_curves_round_trip(home, homes, capsys, name):
    out = run(capsys, FIXTURES / name)
    assert "96-point register curve (示值)" in out and "points are registers at 0:00" in out
    # 6 meters × 192 points: 191 differences each (24:00 of the last day is not in the file).
    assert "interval energy accepted 1,146" in out
    for i, (meter, *_rest) in enumerate(homes):
        got = energy_of(home, meter)
        want = curve(homes, i)
        assert len(got) == 191
        assert all(abs(v - want[t]) < 1e-6 for t, v in got.items())


def test_gb18030_gap_rollover_backwards_step_and_half_hourly(home, homes, capsys):
    out = run(capsys, FIXTURES / "registers_long_gb18030.csv")
    assert "csv, GB18030" in out
    assert "1 register rollovers" in out
    # The backwards point is refused with the row, the field, both values and the reason.
    assert "register_down" in out
    assert "registers_long_gb18030.csv:435 field 正向有功总电能示值 value '4515.0730'" in out
    assert "went back from 4522.5575 (at 2024-03-01 12:15) to 4515.073" in out
    # The gap 02:00-03:00 of meter 1: no energy invented, one difference over the hour kept.
    m1 = homes[0][0]
    want = curve(homes, 0)
    start = datetime(2024, 3, 1, 2, 0, tzinfo=SHANGHAI).astimezone(UTC)
    got = energy_of(home, m1)
    assert all(start + timedelta(minutes=15 * j) not in got for j in range(4))
    span = energy_of(home, m1, "kWh span")
    hour = sum(want[start + timedelta(minutes=15 * j)] for j in range(4))
    assert span == {start: pytest.approx(hour)}
    # The rollover's interval has the real energy, not -99,990 kWh.
    m2 = energy_of(home, homes[1][0])
    assert len(m2) == 192
    assert all(abs(v - curve(homes, 1)[t]) < 1e-6 for t, v in m2.items())
    # Meter 4 is read every 30 minutes: its interval is inferred, each half hour's energy whole.
    m4 = energy_of(home, homes[3][0])
    w4 = curve(homes, 3)
    assert len(m4) == 96
    assert all(abs(v - w4[t] - w4[t + timedelta(minutes=15)]) < 1e-6 for t, v in m4.items())


def test_spread_shares_a_gap_evenly(home, homes, capsys):
    run(capsys, "--spread", FIXTURES / "registers_long_gb18030.csv")
    m1 = homes[0][0]
    start = datetime(2024, 3, 1, 2, 0, tzinfo=SHANGHAI).astimezone(UTC)
    got = energy_of(home, m1)
    hour = sum(curve(homes, 0)[start + timedelta(minutes=15 * j)] for j in range(4))
    assert [got[start + timedelta(minutes=15 * j)] for j in range(4)] == [
        pytest.approx(hour / 4)
    ] * 4
    assert not energy_of(home, m1, "kWh span")


def test_replaced_meter_refused_without_a_rule_and_a_gap_with_one(home, homes, tmp_path, capsys):
    path = FIXTURES / "registers_replaced.csv"
    out = run(capsys, path)
    assert "register_down" in out and "went back from 2214.1125" in out
    assert "--replaced-below" in out
    other = tmp_path / "again"
    other.mkdir()
    shutil.copy(path, other / path.name)
    out = run(capsys, "--replaced-below", "5", other / path.name)
    assert "1 meter replacements by --replaced-below" in out
    assert "register_down" not in out
    meter = homes[4][0]
    got = energy_of(home, meter)
    want = curve(homes, 4)
    noon = datetime(2024, 3, 1, 11, 45, tzinfo=SHANGHAI).astimezone(UTC)
    assert noon not in got  # the interval across the replacement is a gap
    assert len(got) == 191
    assert all(abs(v - want[t]) < 1e-6 for t, v in got.items())


def test_next_days_file_continues_from_the_store(home, homes, tmp_path, capsys):
    """A daily drop: today's first interval (00:00) comes from yesterday's last register."""
    lines = (FIXTURES / "registers_long_gb18030.csv").read_bytes().decode("gb18030").splitlines()
    header, body = lines[0], lines[1:]
    day1 = [ln for ln in body if ",2024-03-01 " in ln]
    day2 = [ln for ln in body if ",2024-03-01 " not in ln]
    for name, part in (("d1.csv", day1), ("d2.csv", day2)):
        (tmp_path / name).write_text("\n".join([header, *part]) + "\n", encoding="utf-8")
    run(capsys, tmp_path / "d1.csv")
    run(capsys, tmp_path / "d2.csv")
    m5 = homes[4][0]
    midnight = datetime(2024, 3, 1, 23, 45, tzinfo=SHANGHAI).astimezone(UTC)
    assert energy_of(home, m5)[midnight] == pytest.approx(curve(homes, 4)[midnight])


def test_jump_above_the_limit_is_refused(home, tmp_path, capsys):
    path = tmp_path / "jump.csv"
    path.write_text(
        "表号,冻结时间,正向有功总(kWh)\nM1,2024-03-01 00:00,100\nM1,2024-03-01 00:15,160\n"
        "M1,2024-03-01 00:30,100.5\n",
        encoding="utf-8",
    )
    out = run(capsys, path)
    assert "register_jump" in out
    assert "jump.csv:3 field 正向有功总(kWh) value '160'" in out
    assert "60 kWh in 15 min, above the plausible maximum of 25 kWh" in out
    # The refused point leaves a gap: 00:00 -> 00:30 is one longer interval of 0.5 kWh.
    assert not energy_of(home, "M1")
    assert list(energy_of(home, "M1", "kWh span").values()) == [pytest.approx(0.5)]


# ---- fuzz: whatever the registers, no crash and no accepted row lost ---------------------------

step = st.one_of(
    st.floats(min_value=0, max_value=3, allow_nan=False),
    st.sampled_from([-5.0, -0.01, 40.0, 1e6]),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    meters=st.lists(
        st.tuples(
            st.sampled_from(["M1", "M2", "M3"]),
            st.floats(min_value=0, max_value=99_999, allow_nan=False),
            st.lists(st.tuples(st.integers(1, 4), step), min_size=1, max_size=30),
        ),
        min_size=1,
        max_size=3,
    ),
    cells=st.lists(st.sampled_from(["", "x", "-1", "1e400"]), max_size=3),
)
def test_fuzz_register_reader(tmp_path, meters, cells):
    lines = ["表号,数据时间,正向有功总(kWh)"]
    t0 = datetime(2024, 3, 1)
    for meter, start, steps in meters:
        t, v = t0, start
        lines.append(f"{meter},{t:%Y-%m-%d %H:%M},{v:.4f}")
        for gap, d in steps:
            t += timedelta(minutes=15 * gap)
            v = round(v + d, 4)
            lines.append(f"{meter},{t:%Y-%m-%d %H:%M},{v:.4f}")
    for c in cells:
        lines.append(f"M9,2024-03-01 00:00,{c}")
    path = tmp_path / "fuzz.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    src = open_source(path, Options(time_zone="Asia/Shanghai"))
    regs, rejected, energy = 0, set(), 0
    for b in src.batches():
        regs += b.records.filter(pl.col("unit") == "kWh reg").height
        energy += b.records.filter(pl.col("unit").is_in(["kWh", "kWh span"])).height
        rejected |= set(b.rejections["line"].to_list())
        assert b.records.filter(pl.col("unit") != "kWh reg")["value"].min() or 0 >= 0
    # Every line is a stored register, a rejection, or a repeat of a meter's time.
    keys = {(ln.split(",")[0], ln.split(",")[1]) for ln in lines[1:]}
    assert regs + len(rejected) >= len(keys) - len([c for c in cells if c == ""])
    assert energy <= regs


def test_replacement_record_carries_the_household_across_two_meters(home, homes, capsys):
    from lianxin.care.models import Household, Meter, MeterReplacement
    from lianxin.monitor.loop import Monitor
    from lianxin.web.load import load_chart

    old = homes[4][0]
    household = Household.objects.create(code="3000000005", address="眉山市东坡区苏祠路16号")
    Meter.objects.create(number=old, account_number="3000000005", household=household)
    out = run(capsys, FIXTURES / "meter_replacement_gb18030.csv")
    assert "meter replacements (换表), csv, GB18030" in out
    assert "旧表止码 (old meter's final register)" in out
    assert "replacements  1 换表 records kept" in out
    record = MeterReplacement.objects.get()
    assert record.new_meter.household == household and not record.old_meter.active
    assert record.new_meter.number == "3330001000000000000099"
    out = main(["import", str(FIXTURES / "registers_new_meter.csv")])
    out = capsys.readouterr().out
    assert "1 intervals across a meter replacement, from its 换表 record" in out
    assert "rejected                 0" in out
    # Every quarter-hour of the two days has its energy, across the two meters; the one across
    # the change is the old meter's last part plus the new meter's first.
    want = curve(homes, 4)
    got = {**energy_of(home, old), **energy_of(home, "3330001000000000000099")}
    assert len(got) == 192
    assert {t: round(v, 6) for t, v in got.items() if abs(v - want[t]) > 1e-6} == {}
    # The engine judges the household on both meters (the old one is kept for its history).
    monitor = Monitor(home, "Asia/Shanghai", history_days=3)
    monitor.sync_registry()
    assert set(monitor.meters["meter"]) == {old, "3330001000000000000099"}
    assert set(monitor.meters["household_id"]) == {"3000000005"}
    monitor.close()
    # The chart draws both meters' readings as one line.
    chart = load_chart(household, "7d", now=datetime(2024, 3, 3, tzinfo=UTC))
    assert len(chart["load"]) == 192
