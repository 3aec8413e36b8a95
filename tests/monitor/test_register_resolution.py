"""Register (示值) meters read to 0.01 kWh, as the acquisition system prints them: a quarter-hour
in which a frugal home used under 0.01 kWh (40 W) shows two equal registers, an interval energy
of zero. That is not a power cut; a register that stands still for longer than even a fridge
allows is."""

import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lianxin.care.models import Meter
from lianxin.cli import main
from lianxin.monitor.loop import Monitor

DATA = Path(__file__).resolve().parent.parent / "data"
sys.path.insert(0, str(DATA))
from make_register_fixtures import series  # noqa: E402

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
STUCK = 12  # the last 3 hours of the second day: the supply is lost at the first home


@pytest.fixture
def home(tmp_path, settings):
    settings.LIANXIN_HOME = tmp_path
    settings.TIME_ZONE = "Asia/Shanghai"
    return tmp_path


def coarse_export(path: Path) -> tuple[list[str], datetime, datetime]:
    """Three real London curves at a fifth of their use (an elderly home alone), as 0.01 kWh
    registers (truncated, as a register display is) every 15 minutes for two days; the first
    home's register stands still for its last STUCK quarter-hours. (meters, start, end) in UTC."""
    lines = ["电能表资产编号,采集时间,正向有功总(kWh)"]
    meters = []
    for i, (meter, _account, points, energy) in enumerate(series()[2:5]):
        meters.append(meter)
        register = 2214.0 + 100 * i
        for k, (t, _reg, _rev) in enumerate(points):
            lines.append(
                f"{meter},{t:%Y-%m-%d %H:%M},{math.floor(register * 100 + 1e-6) / 100:.2f}"
            )
            if k < len(energy) and not (i == 0 and k >= len(energy) - STUCK):
                register += energy[k] * 0.2
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    points = series()[0][2]
    start, end = (points[j][0].replace(tzinfo=SHANGHAI).astimezone(UTC) for j in (0, -1))
    return meters, start, end


def test_zero_steps_of_a_coarse_register_are_no_power_cut_a_register_standing_still_is(
    home, tmp_path, capsys
):
    meters, start, end = coarse_export(tmp_path / "示值.csv")
    assert main(["import", "--register-unknown", str(tmp_path / "示值.csv")]) == 0
    out = capsys.readouterr().out
    assert "rejected                 0" in out
    assert "note          register resolution 0.01 kWh recorded for 3 meters" in out
    # The import read the registers' resolution from how they are written.
    assert set(Meter.objects.values_list("resolution_kwh", flat=True)) == {0.01}

    monitor = Monitor(home, "Asia/Shanghai", history_days=1)
    monitor.step(start + timedelta(days=1), raise_alerts=False)  # a first day to learn from
    report = monitor.step(end)
    monitor.close()
    raised = [f for f in report.findings if f.kind == "no_power" and f.event == "raised"]
    # The second day has dozens of quarter-hours with equal registers at these homes (runs of
    # up to 45 minutes at night): none is a power cut. The register standing still for 3 hours
    # is, an hour and a quarter after it stopped.
    assert [f.household_id for f in raised] == [meters[0]]
    # (The zero run may begin a quarter-hour or two early: what was used just before the cut
    # may not have reached the next 0.01.)
    stopped = end - timedelta(minutes=15 * STUCK)
    assert stopped - timedelta(minutes=30) <= raised[0].started_at <= stopped
    assert raised[0].detected_at == raised[0].started_at + timedelta(minutes=75)
    en, zh = raised[0].reason_en, raised[0].reason_zh
    assert "has not moved by its smallest step (0.01 kWh) in 1.2 h, under 8 W on average" in en
    assert "its longest standstill in the last 1 days was 30 min." in en
    assert "电表示值1.2小时内未走动（最小刻度0.01千瓦时，平均不足8瓦）" in zh


def test_the_resolution_follows_the_decimals_an_export_prints(home, capsys):
    # The committed fixtures print registers to 4 decimals: a zero there is under 0.4 W.
    assert main(["import", "--register-unknown", str(DATA / "ingest" / "registers_long.xlsx")]) == 0
    capsys.readouterr()
    assert set(Meter.objects.values_list("resolution_kwh", flat=True)) == {0.0001}
