"""Writes the interval register (示值) fixtures in tests/data/ingest/ (output is committed).

The registers are real curves turned into cumulative sums: the first two days of six London
households from lcl_sample.parquet (half-hourly kWh, each half hour split into two equal
quarter-hours, as make_ingest_fixtures.py does), added up from a realistic starting register, as
the acquisition system's 96点示值查询 shows them. Each file carries the trouble a real export has:

- registers_long.xlsx: long, 电能表资产编号 / 日期 (full timestamp) / 正向有功总(kWh) /
  反向有功总(kWh) / 正向无功总(kvarh); meter 6 exports midday (reverse register grows).
- registers_long_gb18030.csv: long, GB18030, 电表编号 / 数据时间 / 正向有功总电能示值; meter 1
  misses 02:00-03:00 of day 1 (a gap), meter 2 starts at 99,990 kWh and rolls over its 5 digits,
  meter 3 has one backwards point (a data error), meter 4 is read every 30 minutes.
- registers_wide.csv / registers_wide.xlsx: wide, one row per meter and day, points 0:00 … 23:45
  (UTF-8 with BOM; XLSX with a title row).
- registers_replaced.csv: meter 5 replaced at 12:00 of day 1 (new register starts at 0.52);
  registers_new_meter.csv is the same change with a new meter number from 12:00, and
  meter_replacement_gb18030.csv its 换表 record.

    .venv/bin/python tests/data/make_register_fixtures.py
"""

from datetime import datetime, timedelta

import openpyxl
from make_ingest_fixtures import DAYS, OUT, households

START = [12345.6, 99990.0, 4521.25, 808.5, 2210.0, 35011.75]


def series():
    """(meter, account, [(local time, forward register, reverse register)], energies)."""
    out = []
    for i, (account, meter, _name, _addr, _area, days) in enumerate(households()):
        energy = [v for d in DAYS for v in days[d]]
        t0 = datetime(DAYS[0].year, DAYS[0].month, DAYS[0].day)
        reg, rev, points = START[i], 100.0, []
        for k in range(len(energy) + 1):
            t = t0 + timedelta(minutes=15 * k)
            points.append((t, round(reg, 4), round(rev, 4)))
            if k < len(energy):
                reg += energy[k]
                if i == 5 and 40 <= k % 96 < 64:  # rooftop solar: export around midday
                    rev += 0.05
        out.append((meter, account, points, energy))
    return out


def num(x):
    return f"{x:.4f}"


def main():
    homes = series()
    # Long XLSX.
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "96点示值查询"
    ws.append(
        [
            "电能表资产编号",
            "户号",
            "日期",
            "正向有功总(kWh)",
            "反向有功总(kWh)",
            "正向无功总(kvarh)",
        ]
    )
    for meter, account, points, _ in homes:
        for t, reg, rev in points:
            ws.append([meter, account, t, reg, rev, 1.5])
    wb.save(OUT / "registers_long.xlsx")

    # Long CSV, GB18030, with trouble.
    lines = ["电表编号,数据时间,正向有功总电能示值"]
    for i, (meter, _account, points, _) in enumerate(homes):
        for k, (t, reg, _rev) in enumerate(points):
            if i == 0 and 8 < k < 12:  # 02:15, 02:30, 02:45 missing: 02:00 -> 03:00 one span
                continue
            if i == 1:
                reg = round(reg % 100000, 4)  # a 5-digit register wraps at 100,000
            if i == 2 and k == 50:
                reg = round(reg - 7.5, 4)  # one point read wrongly, below the one before
            if i == 3 and k % 2:
                continue  # a half-hourly meter
            lines.append(f"{meter},{t:%Y-%m-%d %H:%M:%S},{num(reg)}")
    (OUT / "registers_long_gb18030.csv").write_bytes(
        ("\r\n".join(lines) + "\r\n").encode("gb18030")
    )

    # Wide CSV and XLSX: points 0:00 … 23:45 are the registers at those instants.
    clock = [f"{(k * 15) // 60}:{(k * 15) % 60:02d}" for k in range(96)]
    header = ["电能表资产编号", "户号", "数据日期", *clock]
    rows = []
    for meter, account, points, _ in homes:
        for d in range(len(DAYS)):
            day = points[d * 96 : d * 96 + 96]
            rows.append([meter, account, DAYS[d].isoformat(), *[num(r) for _, r, _ in day]])
    title = "用电信息采集系统 96点示值查询(kWh) 导出时间:2024-03-03 08:00"
    text = "\n".join([title] + [",".join(r) for r in [header, *rows]]) + "\n"
    (OUT / "registers_wide.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["用电信息采集系统 96点示值查询 正向有功总(kWh)"])
    ws.append(header)
    for r in rows:
        ws.append([*r[:3], *[float(x) for x in r[3:]]])
    wb.save(OUT / "registers_wide.xlsx")

    # A replaced meter: meter 5's register falls to a new meter's 0.52 kWh at 12:00 of day 1.
    meter, account, points, _ = homes[4]
    lines = ["电能表资产编号,采集时间,正向有功总(kWh)"]
    new_base = None
    for k, (t, reg, _rev) in enumerate(points):
        if k >= 48:
            new_base = new_base if new_base is not None else reg
            reg = round(0.52 + reg - new_base, 4)
        lines.append(f"{meter},{t:%Y-%m-%d %H:%M},{num(reg)}")
    (OUT / "registers_replaced.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    # The same replacement as it is usually exported: a new meter number from 12:00, and its
    # 换表 record (GB18030). The old meter came off at 11:50, 30% into the 11:45-12:00 quarter;
    # the new one reads 0.52 when installed.
    new_meter = "3330001000000000000099"
    e = homes[4][3][47]  # energy of 11:45-12:00
    old_final = round(points[47][1] + 0.3 * e, 4)
    lines = ["电能表资产编号,采集时间,正向有功总(kWh)"]
    for k, (t, reg, _rev) in enumerate(points):
        if k < 48:
            lines.append(f"{meter},{t:%Y-%m-%d %H:%M},{num(reg)}")
        else:
            new_reg = 0.52 + (reg - old_final)
            lines.append(f"{new_meter},{t:%Y-%m-%d %H:%M},{num(new_reg)}")
    (OUT / "registers_new_meter.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    record = [
        "户号,旧表号,新表号,旧表止码,新表起码,换表时间",
        f"{account},{meter},{new_meter},{num(old_final)},0.5200,2024-03-01 11:50:00",
    ]
    (OUT / "meter_replacement_gb18030.csv").write_bytes(
        ("\r\n".join(record) + "\r\n").encode("gb18030")
    )


if __name__ == "__main__":
    main()
