"""Writes the importer fixtures in tests/data/ingest/ (run it to regenerate; output is committed).

They imitate State Grid electricity information acquisition system (用电信息采集系统) exports:
a title line, Chinese headers, GBK encoding, CRLF line ends, 22-digit meter asset numbers and
10-digit account numbers. The load curves are real: the first days of six London households
from lcl_sample.parquet (half-hourly kWh, each half hour split into two equal quarter-hours),
shown as the State Grid would show a power curve (kW = kWh per quarter-hour × 4).

    .venv/bin/python tests/data/make_ingest_fixtures.py
"""

from datetime import date, timedelta
from pathlib import Path

import polars as pl

HERE = Path(__file__).parent
OUT = HERE / "ingest"
CLOCK = [f"{(k * 15) // 60}:{(k * 15) % 60:02d}" for k in range(1, 97)]  # 0:15 ... 24:00
DAYS = [date(2024, 3, 1), date(2024, 3, 2)]
AREAS = [("0512000101", "东坡区苏祠社区1号台区"), ("0512000102", "东坡区苏祠社区2号台区")]


def households():
    """Six real households -> (account, meter, name, address, area) and 96 kWh values per day."""
    df = pl.read_parquet(HERE / "lcl_sample.parquet")
    ids = sorted(df["household_id"].unique())[:6]
    out = []
    for i, hid in enumerate(ids):
        rows = df.filter(pl.col("household_id") == hid).sort("ts")
        days = {}
        for d_index, d in enumerate(DAYS):
            src_day = date(2013, 1, 7) + timedelta(days=d_index)
            half = rows.filter(pl.col("ts").dt.date() == src_day)["kwh"].to_list()
            assert len(half) == 48, (hid, len(half))
            days[d] = [round(v / 2, 4) for v in half for _ in (0, 1)]
        account = f"30{i + 1:08d}"
        meter = f"3330001000{i + 1:012d}"
        name = ["杜明华", "李秀英", "王建国", "张桂兰", "刘志强", "陈淑芬"][i]
        address = f"眉山市东坡区苏祠路{12 + i}号{i + 1}单元"
        area = AREAS[i % 2]
        out.append((account, meter, name, address, area, days))
    return out


def write_gbk(path: Path, lines: list[str]):
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))


def main():
    OUT.mkdir(exist_ok=True)
    homes = households()

    # 1. GBK, clock headers, power (kW) said by the title and header: 负荷.
    header = ["户号", "表号", "户名", "用电地址", "台区编号", "台区名称", "数据日期", *CLOCK]
    lines = ["用电信息采集系统 96点负荷曲线(kW) 导出时间:2024-03-03 08:00", ",".join(header)]
    for account, meter, name, address, (code, area), days in homes:
        for d in DAYS:
            kw = [f"{v * 4:.4f}" for v in days[d]]
            lines.append(",".join([account, meter, name, address, code, area, d.isoformat(), *kw]))
    write_gbk(OUT / "sgcc_load_curve_kw_gbk.csv", lines)

    # 2. UTF-8 with BOM, P1..P96, per-row 数据类型 (energy), dates as 2024/3/1, one blank point.
    header = ["户号", "表号", "数据日期", "数据类型", *[f"P{k}" for k in range(1, 97)]]
    lines = [",".join(header)]
    for account, meter, _n, _a, _area, days in homes[:3]:
        d = DAYS[0]
        vals = [f"{v:.4f}" for v in days[d]]
        if meter.endswith("1"):
            vals[40] = ""  # the collector missed this quarter-hour: a gap, not an error
        lines.append(
            ",".join([account, meter, f"{d.year}/{d.month}/{d.day}", "正向有功电量", *vals])
        )
    (OUT / "sgcc_load_curve_kwh_p96_utf8.csv").write_bytes(
        ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")
    )

    # 3. XLSX, 点1..点96, energy (header says 电量), a title row above the header.
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "96点电量"
    ws.append(["96点电量曲线(kWh)"])
    ws.append(["户号", "表号", "户名", "台区", "数据日期", *[f"点{k}" for k in range(1, 97)]])
    for account, meter, name, _a, (code, _area), days in homes[3:]:
        ws.append([account, meter, name, code, DAYS[1], *days[DAYS[1]]])
    wb.save(OUT / "sgcc_load_curve_kwh_dian96.xlsx")

    # 4. Daily frozen registers (日冻结), GBK; meter 3 is replaced on 3-04 (register resets).
    lines = ["表号,户号,数据日期,正向有功总示值(kWh)"]
    for account, meter, *_ in homes[:3]:
        reg = 1000.0
        for k in range(5):
            d = date(2024, 3, 1) + timedelta(days=k)
            if meter.endswith("3") and k == 3:
                reg = 2.5
            lines.append(f"{meter},{account},{d.isoformat()},{reg:.2f}")
            reg += 4.2 + k
    write_gbk(OUT / "frozen_registers_gbk.csv", lines)

    # 5. Meter events, payments, prepaid balances, topology (GBK, as the marketing system exports).
    m = [h[1] for h in homes]
    a = [h[0] for h in homes]
    write_gbk(
        OUT / "meter_events_gbk.csv",
        [
            "表号,事件时间,事件类型,事件详情",
            f"{m[0]},2024-03-01 21:40:05,停电,",
            f"{m[0]},2024-03-01 23:02:11,上电,",
            f"{m[1]},2024-03-02 07:15:00,电压越限,A相电压 262.1V",
            f"{m[2]},2024-03-02 09:00:00,费控跳闸,余额不足",
            f"{m[3]},2024-03-02 10:30:00,开表盖,",
            f"{m[4]},2024-03-02 11:00:00,通信中断,",
            f"{m[5]},2024-03-02 12:00:00,地震,",
        ],
    )
    write_gbk(
        OUT / "payments_gbk.csv",
        [
            "户号,缴费时间,缴费金额,缴费渠道",
            f"{a[0]},2024-03-01 10:12:00,100.00,微信",
            f"{a[1]},2024-03-01 15:40:00,50.00,营业厅",
            f"{a[2]},2024-03-02 09:05:00,-20.00,支付宝",
        ],
    )
    write_gbk(
        OUT / "balances_gbk.csv",
        [
            "表号,余额时间,剩余金额",
            f"{m[0]},2024-03-02 00:00:00,35.20",
            f"{m[2]},2024-03-02 00:00:00,-3.50",
            f"{m[3]},2024-03-02 00:00:00,abc",
        ],
    )
    write_gbk(
        OUT / "topology_gbk.csv",
        [
            "表号,户号,户名,用电地址,台区编号,台区名称,馈线",
            *[f"{h[1]},{h[0]},{h[2]},{h[3]},{h[4][0]},{h[4][1]},10kV苏祠线" for h in homes],
            f"{m[0]},{a[0]},{homes[0][2]},{homes[0][3]},,,",
        ],
    )

    # 6. A malformed 96-point export: one clear problem per line (see test_import_files.py).
    header = ["户号", "表号", "数据日期", *CLOCK]
    good = [f"{v * 4:.3f}" for v in homes[0][5][DAYS[0]]]
    acc, met = homes[0][0], homes[0][1]

    def row(meter=met, day="2024-03-01", vals=good, account=acc):
        return ",".join([account, meter, day, *vals])

    lines = [
        "96点负荷曲线(kW)",
        ",".join(header),
        row(),  # 3: fine
        row(vals=good[:95]),  # 4: 95 points
        row(vals=[*good, "0.1"]),  # 5: 97 points
        row(vals=[*good[:10], "-0.5", *good[11:]]),  # 6: negative at 2:45
        row(vals=[*good[:20], "9999", *good[21:]]),  # 7: absurd at 5:15
        row(day="2099-01-01"),  # 8: future
        row(day="2024-02-30"),  # 9: no such date
        row(meter=""),  # 10: no meter
        row(vals=[*good[:50], "1,2", *good[51:]]),  # 11: 97 fields because of a stray comma
        row(vals=[*good[:60], "abc", *good[61:]]),  # 12: not a number at 15:15
        row(day="2024-03-02")[:100],  # 13: truncated line
    ]
    body = ("\r\n".join(lines) + "\r\n").encode("gbk")
    # 14: a broken GBK character (张 then half of another): a damaged or mixed-encoding line
    body += b"\xd5\xc5\xd5" + row(day="2024-03-02", account="").encode("gbk") + b"\r\n"
    (OUT / "malformed_load_curve_gbk.csv").write_bytes(body)


if __name__ == "__main__":
    main()
