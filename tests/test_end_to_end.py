"""The story end to end: a State Grid export in, Mr. Du's lights go out, an alert for the duty room.

A GBK 96-point load-curve export of six real homes (LCL London curves) over five weeks, with the
afternoon of the last day at zero for one of them, goes through the importer, the readings store,
the monitor and the engine, and comes out as one no_power alert with a reason to read aloud.
"""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from lianxin.alerts.models import Alert
from lianxin.care.models import CareRecipient, Consent, Meter
from lianxin.ingest.pipeline import import_file
from lianxin.ingest.readers import Options
from lianxin.monitor import Monitor

pytestmark = pytest.mark.django_db
SAMPLE = Path(__file__).parent / "data" / "lcl_sample.parquet"
CLOCK = [f"{(k * 15) // 60}:{(k * 15) % 60:02d}" for k in range(1, 97)]  # 0:15 ... 24:00
FIRST, DAYS = date(2024, 3, 4), 36
OUTAGE_POINT = 56  # from 14:00 local on the last day


def write_export(path: Path) -> list[str]:
    df = pl.read_parquet(SAMPLE)
    homes = sorted(df["household_id"].unique().to_list())[:6]
    lines = [
        "用电信息采集系统 96点负荷曲线(kWh) 导出时间:2024-04-09 08:00",
        "户号,表号,户名,用电地址,台区编号,台区名称,数据日期," + ",".join(CLOCK),
    ]
    meters = []
    for i, hid in enumerate(homes):
        curve = df.filter(pl.col("household_id") == hid).sort("ts")
        by_day = curve.group_by(pl.col("ts").dt.date().alias("d")).agg(pl.col("kwh"))
        by_day = dict(zip(by_day["d"].to_list(), by_day["kwh"].to_list(), strict=True))
        meter = f"3330001000{i + 1:012d}"
        meters.append(meter)
        area = ("0512000101", "苏祠社区1号台区") if i < 3 else ("0512000102", "苏祠社区2号台区")
        for d in range(DAYS):
            halves = by_day[date(2013, 1, 7) + timedelta(days=d)]
            points = [round(v / 2, 4) for v in halves for _ in (0, 1)]
            if i == 0 and d == DAYS - 1:
                points[OUTAGE_POINT:] = [0.0] * (96 - OUTAGE_POINT)
            day = FIRST + timedelta(days=d)
            lines.append(
                f"30{i + 1:08d},{meter},住户{i + 1},眉山市东坡区苏祠路{12 + i}号,"
                f"{area[0]},{area[1]},{day.isoformat()}," + ",".join(map(str, points))
            )
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    return meters


def test_an_export_with_a_power_cut_becomes_one_alert(tmp_path, settings):
    settings.LIANXIN_HOME = tmp_path
    export = tmp_path / "负荷曲线.csv"
    meters = write_export(export)

    summary = import_file(
        export, Options(time_zone="Asia/Shanghai"), register_unknown=True, home=tmp_path
    )
    assert not summary.error
    assert summary.total().accepted == 6 * DAYS * 96
    assert not summary.rejected

    du_home = Meter.objects.get(number=meters[0]).household
    du = CareRecipient.objects.create(name="杜德明", birth_year=1935, household=du_home)
    Consent.objects.create(
        care_recipient=du,
        scope="monitoring",
        given_by="本人",
        given_at=datetime(2024, 1, 1, tzinfo=UTC),
    )

    # The last day is 2024-04-08 (Asia/Shanghai); the monitor looks at 16:00 that day.
    now = datetime(2024, 4, 8, 8, tzinfo=UTC)
    monitor = Monitor(tmp_path, "Asia/Shanghai", history_days=40)
    monitor.step(now)
    monitor.close()

    [alert] = Alert.objects.filter(kind="no_power")
    assert alert.household == du_home
    # Detected within one interval of the first zero quarter-hour ending (14:15 local).
    assert alert.detected_at <= datetime(2024, 4, 8, 6, 30, tzinfo=UTC)
    assert "14:00" in alert.reason_en and "14:00" in alert.reason_zh
    # The neighbours on the same transformer area still had power: not a grid outage.
    assert not Alert.objects.filter(kind="grid_outage").exists()
