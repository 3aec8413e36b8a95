"""The header row: canonical column names from the spellings exports use, the 96 point columns,
and from them the export kind (and a load curve's unit)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from lianxin.ingest.readers.common import FileError, Options
from lianxin.ingest.readers.source import Source

# Canonical column -> header spellings seen in exports (compared after _norm_header).
ALIASES: dict[str, tuple[str, ...]] = {
    "meter": (
        "表号",
        "电能表号",
        "电表号",
        "电表编号",
        "表计编号",
        "电能表资产号",
        "电能表资产编号",
        "电能表编号",
        "表计资产编号",
        "资产编号",
        "表计资产号",
        "meter",
        "meter_id",
        "meter_no",
        "meter_number",
        "meterid",
    ),
    "account": (
        "户号",
        "用户编号",
        "用户号",
        "客户编号",
        "account",
        "account_number",
        "account_no",
    ),
    "household": ("household", "household_id", "household_code", "住户编号"),
    "name": ("户名", "用户名称", "客户名称", "用户名", "name"),
    "address": ("地址", "用电地址", "住址", "address"),
    "area_code": (
        "台区编号",
        "台区编码",
        "台区",
        "台区代码",
        "transformer_area",
        "transformer_area_code",
        "area",
        "area_code",
    ),
    "area_name": ("台区名称", "transformer_area_name", "area_name"),
    "feeder": ("馈线", "馈线编号", "线路", "线路编号", "线路名称", "feeder"),
    "date": ("数据日期", "日期", "换表日期", "冻结日期", "抄表日期", "date", "day"),
    "ts": (
        "时间",
        "数据时间",
        "采集时间",
        "冻结时间",
        "抄表时间",
        "换表时间",
        "装拆时间",
        "时间戳",
        "发生时间",
        "事件时间",
        "缴费时间",
        "余额时间",
        "timestamp",
        "ts",
        "time",
        "datetime",
        "read_at",
    ),
    "value": ("值", "数值", "读数", "value", "kwh", "reading", "energy"),
    "unit": ("单位", "数据类型", "unit", "data_type"),
    "kind": ("kind", "表计类型", "表类型", "meter_kind"),
    "register": (
        "正向有功总",
        "正向有功总示值",
        "正向有功总电能示值",
        "正向有功电能示值",
        "正向有功总电能",
        "正向有功电能",
        "正向有功总示值(kwh)",
        "日冻结示值",
        "冻结示值",
        "示值",
        "日冻结电量",
        "register",
        "register_kwh",
    ),
    # The reverse (export) active register: energy sent to the grid (rooftop solar), never use.
    "register_reverse": (
        "反向有功总",
        "反向有功总示值",
        "反向有功总电能示值",
        "反向有功电能示值",
        "反向有功总电能",
        "反向有功电能",
        "register_reverse",
        "register_export",
    ),
    # A meter replacement (换表) record.
    "old_meter": (
        "旧表号",
        "原表号",
        "旧表资产编号",
        "旧电能表资产编号",
        "拆除表号",
        "拆表表号",
        "old_meter",
    ),
    "new_meter": (
        "新表号",
        "新表资产编号",
        "新电能表资产编号",
        "装出表号",
        "新装表号",
        "装表表号",
        "new_meter",
    ),
    "old_final": ("旧表止码", "旧表示值", "拆表示值", "拆除示值", "旧表底度", "止码", "old_final"),
    "new_initial": (
        "新表起码",
        "新表示值",
        "装表示值",
        "新装示值",
        "新表底度",
        "起码",
        "new_initial",
    ),
    "event": ("事件类型", "事件", "事件名称", "event", "event_type"),
    "detail": ("事件详情", "详情", "描述", "事件描述", "detail", "details"),
    "amount": ("缴费金额", "金额", "交费金额", "amount"),
    "channel": ("缴费渠道", "渠道", "缴费方式", "交费渠道", "channel"),
    "balance": ("余额", "剩余金额", "账户余额", "当前余额", "balance"),
}
# Reactive energy or power columns (无功, kvarh, kvar): ignored with a note, never rejected.
_REACTIVE_RE = re.compile(r"无功|kvarh|kvar|reactive")
# A register column's unit in its header -> factor to kWh (a power unit is no register).
_REGISTER_FACTORS = {"kwh": 1.0, "wh": 0.001, "mwh": 1000.0, "千瓦时": 1.0, "度": 1.0}
_ALIAS_TO_CANON = {a.lower(): canon for canon, names in ALIASES.items() for a in names}
_POINT_RE = re.compile(r"^(?:p|点|point_?|pt)(\d{1,3})$")
_CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


def _norm_header(h) -> str:
    text = "" if h is None else str(h)
    text = text.replace("\ufeff", "").strip().strip('"').strip()
    return re.sub(r"\s+", "", text).lower()


def _point_index(norm: str, start_labelled: bool) -> int | None:
    m = _POINT_RE.match(norm)
    if m:
        return int(m.group(1))
    m = _CLOCK_RE.match(norm)
    if m:
        minutes = int(m.group(1)) * 60 + int(m.group(2))
        if minutes % 15:
            return None
        return minutes // 15 + 1 if start_labelled else minutes // 15
    return None


def _looks_like_header(cells: list) -> bool:
    norm = [_norm_header(c) for c in cells]
    known = sum(
        1
        for n in norm
        if n in _ALIAS_TO_CANON or re.sub(r"[(（\[].*?[)）\]]", "", n) in _ALIAS_TO_CANON
    )
    points = sum(1 for n in norm if _POINT_RE.match(n) or _CLOCK_RE.match(n))
    return known >= 2 or points >= 24


def _classify_header(path: Path, cells: list, title: str, options: Options) -> Source:
    """Decide the export kind from the header; map columns; find the unit of a load curve."""
    norm = [_norm_header(c) for c in cells]
    clock = [n for n in norm if _CLOCK_RE.match(n)]
    start_labelled = bool(clock) and "24:00" not in clock and ("0:00" in clock or "00:00" in clock)
    columns: dict[str, str] = {}
    points: list[tuple[str, int]] = []
    ignored: list[tuple[str, str]] = []  # (header, why)
    factors: dict[str, float] = {}
    for raw, n in zip(cells, norm, strict=True):
        k = _point_index(n, start_labelled)
        if k is not None:
            points.append((str(raw).strip(), k))
            continue
        # A unit in brackets after a header name: "值(kWh)", "负荷(kW)", "正向有功总(kWh)".
        base = re.sub(r"[(（\[].*?[)）\]]", "", n)
        bracket = re.findall(r"[(（\[](.*?)[)）\]]", n)
        if _REACTIVE_RE.search(n):
            ignored.append((str(raw), "reactive energy, not used"))
            continue
        canon = _ALIAS_TO_CANON.get(n) or _ALIAS_TO_CANON.get(base)
        if canon in ("register", "register_reverse") and bracket:
            factor = _REGISTER_FACTORS.get(bracket[-1])
            if factor is None:
                ignored.append((str(raw), f"unit {bracket[-1]} is not an energy register"))
                continue
            factors[canon] = factor
        if canon and canon not in columns:
            columns[canon] = str(raw)
        elif str(raw).strip() and raw is not None:
            ignored.append((str(raw), "a second column of that name" if canon else "not used"))
    src = Source(
        path=path,
        container="",
        encoding=None,
        kind="",
        options=options,
        _columns=columns,
        _points=points,
        _ignored=ignored,
        _factors=factors,
        _start_labelled=start_labelled,
    )
    found = ", ".join(str(c) for c in cells[:12]) + (" …" if len(cells) > 12 else "")
    if len(points) >= 24:
        ks = sorted(k for _, k in points)
        if ks != list(range(1, 97)):
            names = [h for h, _ in sorted(points, key=lambda p: p[1])]
            dup = len(ks) - len(set(ks))
            raise FileError(
                f"{path}: {len(points)} point columns ({names[0]} … {names[-1]}"
                f"{f', {dup} repeated' if dup else ''}): a day has 96 quarter-hours "
                "(0:15 … 24:00, P1 … P96 or 点1 … 点96)"
            )
        if "meter" not in columns or "date" not in columns:
            raise FileError(
                f"{path}: a 96-point curve needs the columns 表号 (meter) and 数据日期 "
                f"(date); found: {found}"
            )
        if re.search(r"示值|register", (title + " " + " ".join(str(c) for c in cells)).lower()):
            # 96点示值: the points are the register at each instant, not the energy.
            src.kind = "register_curve"
            src.unit_note = "points are registers at " + (
                "0:00 … 23:45" if start_labelled else "0:15 … 24:00 (24:00 = next midnight)"
            )
            return src
        src.kind = "load_curve"
        src._unit, src.unit_note = _curve_unit(path, cells, title, columns, options)
        return src
    if {"old_meter", "new_meter"} <= columns.keys():
        missing = [c for c in ("old_final", "new_initial") if c not in columns]
        if missing or not ({"ts", "date"} & columns.keys()):
            raise FileError(
                f"{path}: a meter replacement (换表) record needs 旧表号, 新表号, 旧表止码, "
                f"新表起码 and 换表时间; found: {found}"
            )
        src.kind = "replacements"
    elif "register" in columns and "meter" in columns and "ts" in columns:
        src.kind = "interval_registers"
    elif "register" in columns and "meter" in columns and "date" in columns:
        # 日期 may hold a date (daily frozen) or a full timestamp (interval registers): the
        # reader tells them apart from the values.
        src.kind = "registers"
    elif "event" in columns and "meter" in columns and "ts" in columns:
        src.kind = "events"
    elif (
        "amount" in columns
        and ({"account", "meter"} & columns.keys())
        and ({"ts", "date"} & columns.keys())
    ):
        src.kind = "payments"
    elif "balance" in columns and "meter" in columns and ({"ts", "date"} & columns.keys()):
        src.kind = "balances"
    elif "value" in columns and "ts" in columns and ({"meter", "household"} & columns.keys()):
        src.kind = "long"
        value_header = _norm_header(columns["value"])
        src._unit = options.unit or ("kWh" if "kwh" in value_header else None)
    elif "meter" in columns and "area_code" in columns:
        src.kind = "topology"
    else:
        raise FileError(
            f"{path}: wrong columns, cannot tell what this file holds; found: {found}. Expected a "
            "96-point curve (表号, 数据日期, 0:15 … 24:00), "
            "daily registers (表号, 数据日期, 正向有功总), "
            "long readings (meter, ts, value), events (表号, 事件时间, 事件类型), payments (户号, "
            "缴费时间, 缴费金额), balances (表号, 时间, 余额) or topology (表号, 台区编号)"
        )
    return src


def _curve_unit(path, cells, title, columns, options) -> tuple[str | None, str]:
    if "unit" in columns:
        return options.unit, f"unit per row from column {columns['unit']}"
    if options.unit:
        return options.unit, f"unit {options.unit} (--unit)"
    text = (title + " " + " ".join(str(c) for c in cells)).lower()
    if re.search(r"kwh|电量|电能|能量", text):
        return "kWh", "unit kWh (from the header)"
    if re.search(r"kw|负荷|功率", text):
        return "kW", "unit kW average power, converted to kWh = kW/4 (from the header)"
    raise FileError(
        f"{path}: the file does not say whether the 96 points are energy (kWh) or "
        "power (kW): give --unit kWh or --unit kW"
    )


def _frame_from_header(src: Source, rows: pl.DataFrame) -> pl.DataFrame:
    """Rename a frame of raw header names to canonical names (+ `_p<k>` for the points)."""
    mapping = {}
    for canon, raw in src._columns.items():
        mapping[raw] = canon
    for raw, k in src._points:
        mapping[raw] = f"_p{k}"
    keep = [c for c in rows.columns if c in mapping or c == "_line"]
    return rows.select(keep).rename({c: mapping[c] for c in keep if c != "_line"})


# ---- text (CSV/TSV) --------------------------------------------------------------------------


def _empty_canonical(src: Source) -> pl.DataFrame:
    cols = {c: pl.String for c in src._columns}
    cols.update({f"_p{k}": pl.String for _, k in src._points})
    cols["_line"] = pl.Int64
    return pl.DataFrame(schema=cols)
