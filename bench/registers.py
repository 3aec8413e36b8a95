"""Interval register (示值) import throughput, and the daily drop at utility scale.

Cases (each in its own process, so its peak RSS is its own), 100,000 meters x 1 day:
  long-parquet  电能表资产编号, 数据时间, 正向有功总(kWh): 97 points a meter (00:00 … 24:00)
  long-csv      the same as UTF-8 CSV
  wide-csv      96点示值 (one row per meter and day, 0:00 … 23:45), GB18030
  wide-xlsx     96点示值 as XLSX (one sheet of 100,000 rows, some 400 MB of sheet XML, the way
                openpyxl's write-only mode writes it: inline strings, numbers)
  cli-<case>    the same file through `lianxin import` as a process of its own (start-up, Django,
                the summary, exit): e.g. cli-long-parquet
  daily-drop    `lianxin watch --once` takes yesterday's and today's wide CSV (100,000 meters
                each); then `lianxin monitor --once --lateness` judges the day that arrived late;
                prints the import time and the data-gap findings (0 expected)

    .venv/bin/python bench/registers.py              # all cases
    .venv/bin/python bench/registers.py long-csv     # one case
    LIANXIN_BENCH_METERS=200 .venv/bin/python bench/registers.py daily-drop   # a quick try

Readings/s counts the registers read (the interval energies derived from them are written too).
Targets (issue 17): >= 1 M readings/s long Parquet/CSV, >= 0.5 M/s XLSX (measure and say).
"""

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

N_METERS = int(os.environ.get("LIANXIN_BENCH_METERS", "100000"))
DAY = date(2024, 3, 1)
WORK = Path(os.environ.get("LIANXIN_BENCH_DIR") or tempfile.gettempdir()) / "lianxin-bench-reg"


def _meter(i: int) -> str:
    return f"3330001{i:015d}"


def _registers(n_meters: int, points: int, day: date, seed: int = 1):
    """(meters, matrix of registers n_meters x points) from a realistic start, 15-min steps. A
    later day continues each meter's register from where the days before it (96 steps each)
    ended, so two days' files chain as a meter's do."""
    import numpy as np

    rng = np.random.default_rng(seed)
    start = rng.uniform(1_000, 60_000, size=(n_meters, 1))
    # One block of steps per day from the same stream: day 1's are the same whichever day is
    # asked for.
    days = [96] * (day - DAY).days + [points]
    steps = np.hstack([rng.gamma(2.0, 0.075, size=(n_meters, k)).round(4) for k in days])
    steps[:, 0] = 0
    regs = (start + steps.cumsum(axis=1))[:, -points:]
    return [_meter(i) for i in range(n_meters)], regs.round(4)


def _long_frame(n_meters: int):
    import numpy as np
    import polars as pl

    meters, regs = _registers(n_meters, 97, DAY)
    t0 = np.datetime64(DAY.isoformat() + "T00:00", "us")
    ts = t0 + np.arange(97) * np.timedelta64(15, "m")
    return pl.DataFrame(
        {
            "电能表资产编号": np.repeat(meters, 97),
            "数据时间": np.tile(ts, n_meters).astype("datetime64[us]"),
            "正向有功总(kWh)": regs.ravel(),
        }
    )


def _wide_lines(n_meters: int, day: date) -> list[str]:
    meters, regs = _registers(n_meters, 96, day)
    clock = [f"{(k * 15) // 60}:{(k * 15) % 60:02d}" for k in range(96)]
    lines = ["用电信息采集系统 96点示值查询(kWh)", ",".join(["电能表资产编号", "数据日期", *clock])]
    for m, row in zip(meters, regs, strict=True):
        lines.append(f"{m},{day.isoformat()}," + ",".join(f"{v:.4f}" for v in row))
    return lines


def inputs(case: str) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    if case == "long-parquet":
        path = WORK / "long.parquet"
        if not path.exists():
            _long_frame(N_METERS).write_parquet(path, row_group_size=1_000_000)
    elif case == "long-csv":
        path = WORK / "long.csv"
        if not path.exists():
            _long_frame(N_METERS).write_csv(path, datetime_format="%Y-%m-%d %H:%M:%S")
    elif case == "wide-csv":
        path = WORK / "wide_gb18030.csv"
        if not path.exists():
            path.write_bytes(("\r\n".join(_wide_lines(N_METERS, DAY)) + "\r\n").encode("gb18030"))
    elif case == "wide-xlsx":
        path = WORK / "wide.xlsx"
        if not path.exists():
            _write_xlsx(path, "96点示值", _wide_lines(N_METERS, DAY))
    return path


def _write_xlsx(path: Path, sheet: str, lines: list[str]) -> None:
    """A workbook as openpyxl's write-only mode makes it (a skeleton from openpyxl, the sheet's
    XML written here: openpyxl took 4 minutes for 10,000 rows on a shared machine): text as
    inline strings, registers as numbers."""
    import io
    import zipfile
    from xml.sax.saxutils import escape

    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    wb.create_sheet(sheet)
    buf = io.BytesIO()
    wb.save(buf)
    skeleton = zipfile.ZipFile(buf)

    def col(i: int) -> str:
        name = ""
        i += 1
        while i:
            i, r = divmod(i - 1, 26)
            name = chr(65 + r) + name
        return name

    cols = [col(i) for i in range(120)]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in skeleton.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                zf.writestr(info.filename, skeleton.read(info.filename))
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b"<sheetData>"
            )
            for r, line in enumerate(lines, start=1):
                cells = line.split(",")
                out = [f'<row r="{r}">']
                for c, v in enumerate(cells):
                    if r > 2 and c >= 2:
                        out.append(f'<c r="{cols[c]}{r}"><v>{v}</v></c>')
                    else:
                        out.append(
                            f'<c r="{cols[c]}{r}" t="inlineStr"><is><t>{escape(v)}</t></is></c>'
                        )
                out.append("</row>")
                fh.write("".join(out).encode())
            fh.write(b"</sheetData></worksheet>")


def setup_home(home: Path, n_meters: int):
    """A data directory with `n_meters` registered meters (made once, then reused)."""
    os.environ["LIANXIN_HOME"] = str(home)
    os.environ["DJANGO_SETTINGS_MODULE"] = "lianxin.web.settings"
    from lianxin.web.setup import migrate, setup_django

    setup_django()
    migrate()
    from lianxin.care.models import Household, Meter

    if Meter.objects.count() < n_meters:
        Household.objects.bulk_create(
            [Household(code=f"H{i:07d}", address=f"addr {i}") for i in range(n_meters)],
            batch_size=5000,
            ignore_conflicts=True,
        )
        ids = dict(Household.objects.values_list("code", "id"))
        Meter.objects.bulk_create(
            [
                Meter(number=_meter(i), account_number=f"A{i:09d}", household_id=ids[f"H{i:07d}"])
                for i in range(n_meters)
            ],
            batch_size=5000,
            ignore_conflicts=True,
        )


def run_import(case: str):
    path = inputs(case)
    home = WORK / "home"
    setup_home(home, N_METERS)
    shutil.rmtree(home / "readings", ignore_errors=True)
    import polars as pl

    from lianxin.ingest.pipeline import import_file
    from lianxin.ingest.readers import Options, open_source
    from lianxin.meterdata import DEFAULT_TIME_ZONE

    # The readers alone (sniff, parse, check, registers -> interval energy), then the whole
    # import (the same, plus meter look-up and the store's writes).
    t0, c0 = time.perf_counter(), time.process_time()
    read = sum(
        b.records.filter(pl.col("unit") == "kWh reg").height
        for b in open_source(path, Options(time_zone=DEFAULT_TIME_ZONE)).batches()
    )
    read_dt, read_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    summary = import_file(path, Options(time_zone=DEFAULT_TIME_ZONE), home=home)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert not summary.rejected and not summary.error, summary.lines()
    regs = summary.written["registers"].accepted
    energy = summary.written["interval energy"].accepted
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{case:<13} {regs:>10,} registers in {dt:6.2f} s = {regs / dt:>10,.0f} readings/s "
        f"(+{energy:,} interval energies written; file {path.stat().st_size / 1e6:,.0f} MB, "
        f"peak RSS {rss:,.0f} MB)",
        flush=True,
    )
    # On a shared machine the wall clock counts others' work too; CPU seconds (all threads)
    # are this process's own.
    print(
        f"{'':<13} CPU {cpu:6.2f} s = {regs / cpu:>10,.0f} readings per CPU-second; "
        f"load average now {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    print(
        f"{'':<13} readers alone: {read:,} registers in {read_dt:6.2f} s = "
        f"{read / read_dt:>10,.0f} readings/s, CPU {read_cpu:.2f} s = "
        f"{read / read_cpu:,.0f} per CPU-second (the rest of the import is meter look-up and "
        "the store's writes)",
        flush=True,
    )


def run_cli(case: str):
    """`lianxin import FILE` as a process, the way a user runs it, timed from outside."""
    path = inputs(case)
    home = WORK / "home"
    setup_home(home, N_METERS)
    shutil.rmtree(home / "readings", ignore_errors=True)
    env = {**os.environ, "LIANXIN_HOME": str(home)}
    out, dt, cpu, after = _timed([sys.executable, "-m", "lianxin", "import", str(path)], env)
    regs = N_METERS * (97 if case.startswith("long") else 96)
    words = [line.split() for line in out.stdout.splitlines()]
    rejected = [w for w in words if w[:1] == ["rejected"]]
    if out.returncode != 0 or not rejected or rejected[0][1:] != ["0"]:
        print(out.stdout[-3000:], out.stderr[-3000:])
    print(
        f"cli-{case:<9} lianxin import: {regs:,} registers in {dt:6.2f} s = "
        f"{regs / dt:>10,.0f} readings/s (whole process; CPU {cpu:.2f} s = {regs / cpu:,.0f} "
        f"per CPU-second; peak RSS {after.ru_maxrss / 1024:,.0f} MB; load average "
        f"{os.getloadavg()[0]:.1f}; exit {out.returncode})",
        flush=True,
    )


def _timed(cmd: list[str], env: dict) -> tuple:
    """Run a whole command as a user does: (its result, wall s, CPU s of the child, the
    children's rusage after it, whose ru_maxrss is the peak RSS)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return out, dt, cpu, after


def daily_drop():
    """Two days of 96点示值 dropped into a watched folder, then the monitor on the late day."""
    home = WORK / "home-drop"
    shutil.rmtree(home, ignore_errors=True)
    setup_home(home, N_METERS)
    drop = WORK / "drop"
    shutil.rmtree(drop, ignore_errors=True)
    drop.mkdir()
    day2 = DAY + timedelta(days=1)
    for day in (DAY, day2):
        data = ("\r\n".join(_wide_lines(N_METERS, day)) + "\r\n").encode("gb18030")
        (drop / f"sgcc_96_{day:%Y%m%d}.csv").write_bytes(data)
    env = {**os.environ, "LIANXIN_HOME": str(home)}
    lianxin = [sys.executable, "-m", "lianxin"]
    out, dt, cpu, after = _timed([*lianxin, "watch", str(drop), "--once", "--quiet"], env)
    out.check_returncode()
    print(
        f"{'daily-drop':<13} lianxin watch --once: 2 files x {N_METERS:,} meters x 96 registers "
        f"in {dt:6.1f} s = {2 * N_METERS * 96 / dt:>10,.0f} readings/s (whole command; CPU "
        f"{cpu:.1f} s, peak RSS {after.ru_maxrss / 1024:,.0f} MB; load average "
        f"{os.getloadavg()[0]:.1f})",
        flush=True,
    )
    if "failed" in out.stdout + out.stderr and "0 failed" not in out.stdout + out.stderr:
        print(out.stdout[-2000:], out.stderr[-2000:])
    # The day arrived at 08:00 the next morning: judged with --lateness covering the delay, no
    # meter is reported silent for a day whose data was merely late.
    os.environ["LIANXIN_HOME"] = str(home)
    from lianxin.monitor.loop import Monitor

    now = datetime.fromisoformat(f"{day2 + timedelta(days=1)}T08:00:00+08:00")
    monitor = Monitor(home, "Asia/Shanghai", history_days=2, lateness=timedelta(hours=10))
    t0 = time.perf_counter()
    report = monitor.step(now, raise_alerts=False)
    dt = time.perf_counter() - t0
    kinds: dict[str, int] = {}
    for f in report.findings:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    monitor.close()
    # The findings other than data gaps, named: each is either in the data or a defect.
    for f in [f for f in report.findings if f.kind != "data_gap"][:12]:
        who = f.household_id or f.transformer_area
        span = f"{f.started_at:%m-%d %H:%M} to {f.detected_at:%m-%d %H:%M} UTC"
        print(f"{'':<13} {f.kind} {who} {span}: {f.reason_en} {f.evidence}"[:400], flush=True)
    print(
        f"{'daily-drop':<13} monitor step --lateness 600 at {now:%Y-%m-%d %H:%M}: judged to "
        f"{report.judged_to:%Y-%m-%d %H:%M} UTC, {report.readings:,} household-intervals in "
        f"{dt:6.1f} s; data_gap findings: {kinds.get('data_gap', 0)}; all findings: {kinds}",
        flush=True,
    )


def main():
    cases = sys.argv[1:] or ["long-parquet", "long-csv", "wide-csv", "wide-xlsx", "daily-drop"]
    if os.environ.get("_LIANXIN_BENCH_CHILD"):
        if cases[0] == "daily-drop":
            daily_drop()
        elif cases[0].startswith("cli-"):
            run_cli(cases[0].removeprefix("cli-"))
        else:
            run_import(cases[0])
        return
    print(f"lianxin bench/registers.py  {date.today()}  cores={os.cpu_count()}  work={WORK}")
    print(f"load average before: {os.getloadavg()[0]:.1f} (the machine may be shared)")
    for case in cases:
        subprocess.run(
            [sys.executable, __file__, case],
            env={**os.environ, "_LIANXIN_BENCH_CHILD": "1"},
            check=True,
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
