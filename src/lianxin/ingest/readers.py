"""File readers: utility exports in, store-shaped frames and per-row rejections out. No Django.

One entry point, `open_source(path, options)`, sniffs the container (Parquet, XLSX, text), the
text encoding (UTF-8 or GB18030 — a superset of GBK — tried in that order, never assumed), the
separator, the header row (a title line above it is allowed) and from the header which export it
is. `Source.batches()` then streams the file in chunks and yields `Batch`es: good records in the
shape of a store plus a frame of rejections (line, field, value, reason, code).

Time conventions (see also docs in lianxin.store):
- Naive timestamps and dates are local time in `options.time_zone`; stored as UTC.
- 96-point curves: point k (1..96) is the quarter-hour ENDING at k*15 minutes after local midnight
  of 数据日期, so `0:15`/P1/点1 covers 00:00-00:15 and `24:00`/P96/点96 covers 23:45-24:00 of that
  same day. The store keys readings by interval START: point k is stored at 00:00 + (k-1)*15 min.
  (An export labelled by interval start, `0:00 … 23:45` with no `24:00`, is read as such.)
- Long format: `ts` is the start of the interval unless `options.ts_marks == "end"`.
- Daily frozen registers (日冻结): the register value at local 00:00 of 数据日期.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from lianxin.errors import LianxinError

UTC_US = pl.Datetime("us", "UTC")
REJECTION_SCHEMA = {
    "line": pl.Int64,
    "field": pl.String,
    "value": pl.String,
    "reason": pl.String,
    "code": pl.String,
}
# Largest plausible value of one reading, per unit. A household supply is at most a few tens of
# kW; 100 kW sustained for an hour is a unit mix-up (Wh as kWh) or a meter fault, not a home.
LIMITS = {
    "kWh": 100.0,
    "kW": 100.0,
    "kWh/d": 2_400.0,
    "kWh reg": 1e9,
    "m3": 10.0,
    "V": 1_000.0,
}
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
BAD_TS = "not a timestamp like 2024-03-01 08:15:00 (or a local time skipped by a DST change)"
# A meter clock a few minutes ahead is skew; beyond that the date is wrong.
FUTURE_TOLERANCE = timedelta(minutes=15)

# Canonical column -> header spellings seen in exports (compared after _norm_header).
ALIASES: dict[str, tuple[str, ...]] = {
    "meter": (
        "表号",
        "电能表号",
        "电表号",
        "电表编号",
        "表计编号",
        "电能表资产号",
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
    "date": ("数据日期", "日期", "冻结日期", "抄表日期", "date", "day"),
    "ts": (
        "时间",
        "数据时间",
        "采集时间",
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
        "日冻结示值",
        "冻结示值",
        "示值",
        "日冻结电量",
        "register",
        "register_kwh",
    ),
    "event": ("事件类型", "事件", "事件名称", "event", "event_type"),
    "detail": ("事件详情", "详情", "描述", "事件描述", "detail", "details"),
    "amount": ("缴费金额", "金额", "交费金额", "amount"),
    "channel": ("缴费渠道", "渠道", "缴费方式", "交费渠道", "channel"),
    "balance": ("余额", "剩余金额", "账户余额", "当前余额", "balance"),
}
_ALIAS_TO_CANON = {a.lower(): canon for canon, names in ALIASES.items() for a in names}
# Meter events as exports spell them -> the store's event kinds.
EVENT_NAMES = {
    "停电": "power_off",
    "掉电": "power_off",
    "失电": "power_off",
    "power_off": "power_off",
    "last_gasp": "power_off",
    "上电": "power_on",
    "复电": "power_on",
    "来电": "power_on",
    "power_on": "power_on",
    "电压越限": "voltage_out_of_range",
    "过压": "voltage_out_of_range",
    "欠压": "voltage_out_of_range",
    "电压越上限": "voltage_out_of_range",
    "电压越下限": "voltage_out_of_range",
    "voltage_out_of_range": "voltage_out_of_range",
    "跳闸": "relay_open",
    "拉闸": "relay_open",
    "费控跳闸": "relay_open",
    "relay_open": "relay_open",
    "合闸": "relay_close",
    "relay_close": "relay_close",
    "开盖": "tamper",
    "开表盖": "tamper",
    "窃电": "tamper",
    "tamper": "tamper",
    "通信中断": "comm_loss",
    "失联": "comm_loss",
    "通讯中断": "comm_loss",
    "comm_loss": "comm_loss",
    "通信恢复": "comm_restored",
    "comm_restored": "comm_restored",
}
_POINT_RE = re.compile(r"^(?:p|点|point_?|pt)(\d{1,3})$")
_CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2})$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日")
_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y%m%d%H%M%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
)
_AWARE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M%z",
    "%Y-%m-%d %H:%M%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
)


class FileError(LianxinError):
    """The file as a whole cannot be read; the message names the file and what is wrong."""


@dataclass
class Options:
    time_zone: str = "Asia/Shanghai"
    unit: str | None = None  # "kWh" or "kW" for load curves when the file does not say
    ts_marks: str = "start"  # long format: timestamps mark the interval "start" or "end"
    interval_minutes: int = 15  # long format with ts_marks="end"
    chunk_bytes: int = 16 * 1024 * 1024  # about 25,000 96-point rows: 2.4 M readings
    now: datetime | None = None  # for "in the future" checks; default: the current time


@dataclass
class Batch:
    """Records of one kind in the shape of its store plus `_line` (the source line, or row of a
    Parquet file); registration columns (account, name, address, area_code, area_name, feeder,
    kind) in `info` or in the records; and the rejections of the same chunk."""

    kind: str  # readings | registers | events | payments | balances | topology
    records: pl.DataFrame
    rejections: pl.DataFrame
    rows: int = 0  # source rows this chunk covered
    info: pl.DataFrame | None = None  # one row per meter: registration columns, if not in records
    held: pl.DataFrame | None = None  # records of unknown meters (set by the pipeline)


@dataclass
class Source:
    path: Path
    container: str  # csv | xlsx | parquet
    encoding: str | None
    kind: str  # load_curve | registers | long | events | payments | balances | topology
    unit_note: str = ""
    options: Options = field(default_factory=Options)
    _chunks: Iterator[tuple[pl.DataFrame, pl.DataFrame, int]] | None = None  # frame, rejected, rows
    _columns: dict[str, str] = field(default_factory=dict)  # canonical -> header as written
    _points: list[tuple[str, int]] = field(default_factory=list)  # (header, k 1..96)
    _unit: str | None = None

    def describe(self) -> str:
        parts = [
            {
                "load_curve": "96-point load curve",
                "registers": "daily frozen registers",
                "long": "long-format readings",
                "events": "meter events",
                "payments": "payment records",
                "balances": "prepaid balances",
                "topology": "transformer-area topology",
            }[self.kind],
            self.container,
        ]
        if self.encoding:
            parts.append(self.encoding)
        if self.unit_note:
            parts.append(self.unit_note)
        return ", ".join(parts)

    def batches(self) -> Iterator[Batch]:
        now = self.options.now or datetime.now(UTC)
        process = {
            "load_curve": self._load_curve,
            "registers": self._registers,
            "long": self._long,
            "events": self._events,
            "payments": self._payments,
            "balances": self._balances,
            "topology": self._topology,
        }[self.kind]
        ids = [c for c in ("meter", "account", "household", "area_code") if c in self._columns]
        for chunk, rejected, rows in self._chunks:
            chunk = chunk.with_columns(
                pl.col(c).cast(pl.String).str.strip_chars() for c in ids if _needs_strip(chunk[c])
            )
            batch = process(chunk, now)
            # Name fields as the file's header writes them (数据日期, not "date").
            batch.rejections = pl.concat(
                [rejected, batch.rejections], how="vertical_relaxed"
            ).with_columns(pl.col("field").replace(self._columns))
            batch.rows = rows
            yield batch

    # ---- per-kind processing; `chunk` has canonical column names and `_line` ----------------

    def _load_curve(self, chunk: pl.DataFrame, now: datetime) -> Batch:
        rej = []
        ok = _required(chunk, "meter", rej)
        day, bad_day = _parse_date(chunk["date"])
        rej.append(
            _reject(
                chunk,
                bad_day & ok,
                "date",
                "date",
                "bad_date",
                "not a date (expected like 2024-03-01)",
            )
        )
        ok &= ~bad_day
        early = day < EARLIEST.date()
        rej.append(_reject(chunk, early & ok, "date", "date", "absurd_date", "date before 2000"))
        ok &= ~early
        # A whole day in the future is one wrong date, not 96 wrong readings.
        future = (day > now.astimezone(ZoneInfo(self.options.time_zone)).date()).fill_null(False)
        rej.append(_reject(chunk, future & ok, "date", "date", "future", "date is in the future"))
        ok &= ~future
        unit = self._row_units(chunk, rej, ok)
        ok &= unit.is_not_null()
        good = chunk.with_columns(_day=day, _unit=unit).filter(ok).with_row_index("_row")
        # Local midnight of each row's day, in UTC: the start of point 1. Converting 1 value per
        # row, not 96, and keeping the 96 points as floats, keeps this fast.
        good = good.with_columns(
            _start=_local_to_utc(good["_day"].cast(pl.Datetime("us")), self.options.time_zone)
        )
        # Cells -> floats, column by column; a cell with spaces around it is retried stripped.
        values, present = [], []
        for _, k in self._points:
            col = good[f"_p{k}"]
            v = col.cast(pl.Float64, strict=False)
            if col.dtype == pl.String:
                if (v.is_null() & col.is_not_null()).any():
                    col = col.str.strip_chars()
                    v = col.cast(pl.Float64, strict=False)
                present.append((col.is_not_null() & (col.str.len_bytes() > 0)).to_numpy())
            else:
                present.append(col.is_not_null().to_numpy())
            values.append(v.to_numpy())  # nulls become NaN: rejected as not a number below
        # Wide -> long: one reading per (row, point), row-major. Empty cells are missing readings
        # (a gap the engine reports), not errors. numpy does the reshaping: polars' concat_list
        # over 96 columns costs ten times as much.
        n, m = good.height, len(self._points)
        keep = np.column_stack(present).ravel() if n else np.zeros(0, dtype=bool)
        rows = np.repeat(np.arange(n, dtype=np.int64), m)[keep]
        long = pl.DataFrame(
            {
                "_row": rows,
                "_k": np.tile(np.arange(m, dtype=np.int32), n)[keep],
                "_orig": np.column_stack(values).ravel()[keep] if n else np.zeros(0),
            }
        )
        long = long.with_columns(
            good.select("_line", "meter", "_start", "_unit")[long["_row"]].get_columns()
        )
        minutes = {i: (k - 1) * 15 for i, (_, k) in enumerate(self._points)}
        long = long.with_columns(
            ts=pl.col("_start")
            + pl.duration(minutes=pl.col("_k").replace_strict(minutes, return_dtype=pl.Int64)),
            value=pl.when(pl.col("_unit") == "kW")
            .then(pl.col("_orig") / 4)
            .otherwise(pl.col("_orig")),
            unit=pl.lit("kWh"),
        )
        records, rej2 = _check_values(long, now, interval=timedelta(minutes=15), hours=0.25)
        if rej2.height:
            rej2 = self._point_rejections(good, rej2)
        rej.append(rej2)
        records = records.select("meter", "ts", "value", "unit", "_line")
        info = good.select("meter", *[c for c in _REGISTRATION if c in good.columns])
        return Batch("readings", records, _concat(rej), info=info.unique("meter", keep="last"))

    def _point_rejections(self, good: pl.DataFrame, rej: pl.DataFrame) -> pl.DataFrame:
        """Name the point column and give the cell as written, for rejected points."""
        headers = [h for h, _ in self._points]
        cols = [f"_p{k}" for _, k in self._points]
        out = []
        for r in rej.iter_rows(named=True):
            row, k = r.pop("_row"), r.pop("_k")
            r["field"] = headers[k]
            cell = good[cols[k]][row]
            r["value"] = "(empty)" if cell is None else str(cell)
            out.append(r)
        return pl.DataFrame(out, schema=REJECTION_SCHEMA, orient="row")

    def _row_units(self, chunk: pl.DataFrame, rej: list, ok: pl.Series) -> pl.Series:
        if "unit" in chunk.columns:
            raw = chunk["unit"].fill_null("").str.strip_chars()
            lower = raw.str.to_lowercase()
            unit = pl.select(
                pl.when(lower.str.contains("kwh|电量|电能|能量"))
                .then(pl.lit("kWh"))
                .when(lower.str.contains("kw|功率|负荷"))
                .then(pl.lit("kW"))
                .when(raw == "")
                .then(pl.lit(self._unit))
                .otherwise(None)
            ).to_series()
            rej.append(
                _reject(
                    chunk,
                    unit.is_null() & ok,
                    "unit",
                    "unit",
                    "bad_unit",
                    "unit is neither energy (kWh, 电量) nor power (kW, 负荷)",
                )
            )
            return unit
        return pl.Series([self._unit] * chunk.height, dtype=pl.String)

    def _registers(self, chunk: pl.DataFrame, now: datetime) -> Batch:
        rej = []
        ok = _required(chunk, "meter", rej)
        day, bad_day = _parse_date(chunk["date"])
        rej.append(
            _reject(
                chunk,
                bad_day & ok,
                "date",
                "date",
                "bad_date",
                "not a date (expected like 2024-03-01)",
            )
        )
        ok &= ~bad_day
        frame = chunk.with_columns(
            _raw=chunk["register"].cast(pl.String),
            _field=pl.lit(self._columns["register"]),
            ts=_local_to_utc(day.cast(pl.Datetime("us")), self.options.time_zone),
            unit=pl.lit("kWh reg"),
        ).filter(ok)
        frame = frame.filter(
            pl.col("_raw").is_not_null() & (pl.col("_raw").str.strip_chars() != "")
        )
        frame = frame.with_columns(
            value=pl.col("_raw").str.strip_chars().cast(pl.Float64, strict=False)
        )
        records, rej2 = _check_values(
            frame, now, interval=timedelta(0), field=self._columns["register"]
        )
        rej.append(rej2)
        return Batch("registers", records, _concat(rej))

    def _long(self, chunk: pl.DataFrame, now: datetime) -> Batch:
        rej = []
        entity = "meter" if "meter" in chunk.columns else "household"
        ok = _required(chunk, entity, rej)
        ts, _, ok = self._dated(chunk, ok, rej)
        if self.options.ts_marks == "end":
            ts = ts - timedelta(minutes=self.options.interval_minutes)
        default = self._unit or "kWh"
        if "unit" in chunk.columns:
            unit = chunk["unit"].cast(pl.String)
            # Normalise spellings on the distinct values only (a column has a handful).
            changes = {u: _unit_name(u, default) for u in unit.unique().to_list() if u is not None}
            changes = {u: c for u, c in changes.items() if u != c}
            unit = unit.fill_null(default)
            if changes:
                unit = unit.replace(changes)
        elif "kind" in chunk.columns:
            kind = chunk["kind"].cast(pl.String).str.to_lowercase()
            unit = pl.select(
                pl.when(kind.is_in(["water", "gas", "水", "气"]))
                .then(pl.lit("m3"))
                .otherwise(pl.lit(default))
            ).to_series()
        else:
            unit = pl.repeat(default, chunk.height, dtype=pl.String, eager=True)
        value_raw = chunk["value"]
        if value_raw.dtype == pl.String:
            value = value_raw.str.strip_chars().cast(pl.Float64, strict=False)
            extra = {"_raw": value_raw}
        else:  # typed (Parquet): the text of a rejected value is made from the value itself
            value = value_raw.cast(pl.Float64, strict=False)
            extra = {}
        frame = chunk.with_columns(ts=ts, unit=unit, value=value, **extra).filter(ok)
        if entity == "household":
            frame = frame.rename({"household": "meter"}).with_columns(_by_household=pl.lit(True))
        records, rej2 = _check_values(
            frame, now, interval=timedelta(0), field=self._columns["value"]
        )
        rej.append(rej2)
        return Batch("readings", records, _concat(rej))

    def _events(self, chunk: pl.DataFrame, now: datetime) -> Batch:
        rej = []
        ok = _required(chunk, "meter", rej)
        ts, _, ok = self._dated(chunk, ok, rej)
        raw = chunk["event"].cast(pl.String).fill_null("").str.strip_chars()
        event = raw.str.to_lowercase().replace_strict(EVENT_NAMES, default=None)
        rej.append(
            _reject(
                chunk,
                event.is_null() & ok,
                "event",
                "event",
                "bad_event",
                "unknown event type (expected e.g. 停电, 上电, 电压越限, 跳闸, 开盖, 通信中断)",
            )
        )
        ok &= event.is_not_null()
        future = ts > (now + FUTURE_TOLERANCE)
        rej.append(
            _reject(
                chunk,
                future.fill_null(False) & ok,
                "ts",
                "ts",
                "future",
                "timestamp is in the future",
            )
        )
        ok &= ~future.fill_null(False)
        detail = chunk["detail"].cast(pl.String).fill_null("") if "detail" in chunk.columns else ""
        records = chunk.with_columns(ts=ts, event=event, detail=detail).filter(ok)
        records = records.select(
            "meter",
            "ts",
            "event",
            "detail",
            "_line",
            *[c for c in _REGISTRATION if c in chunk.columns],
        )
        return Batch("events", records, _concat(rej))

    def _dated(self, chunk: pl.DataFrame, ok: pl.Series, rej: list):
        """The rows' timestamps (a `ts` or a `date` column), rejecting unreadable ones."""
        ts_field = "ts" if "ts" in chunk.columns else "date"
        ts, bad_ts = _parse_ts(chunk[ts_field], self.options.time_zone)
        rej.append(_reject(chunk, bad_ts & ok, ts_field, ts_field, "bad_timestamp", BAD_TS))
        return ts, ts_field, ok & ~bad_ts

    def _payments(self, chunk: pl.DataFrame, now: datetime) -> Batch:
        rej = []
        entity = "account" if "account" in chunk.columns else "meter"
        ok = _required(chunk, entity, rej)
        ts, ts_field, ok = self._dated(chunk, ok, rej)
        amount, bad = _to_float(chunk["amount"])
        rej.append(_reject(chunk, bad & ok, "amount", "amount", "not_a_number", "not a number"))
        ok &= ~bad
        neg = (amount <= 0).fill_null(False)
        rej.append(
            _reject(
                chunk,
                neg & ok,
                "amount",
                "amount",
                "negative",
                "payment amount must be positive (refunds are not payments)",
            )
        )
        ok &= ~neg
        big = (amount > 1e6).fill_null(False)
        rej.append(
            _reject(chunk, big & ok, "amount", "amount", "absurd", "amount above 1,000,000 yuan")
        )
        ok &= ~big
        future = (ts > now + FUTURE_TOLERANCE).fill_null(False)
        rej.append(
            _reject(chunk, future & ok, ts_field, ts_field, "future", "timestamp is in the future")
        )
        ok &= ~future
        channel = (
            chunk["channel"].cast(pl.String).fill_null("") if "channel" in chunk.columns else ""
        )
        records = chunk.with_columns(ts=ts, amount=amount, channel=channel).filter(ok)
        if entity == "meter":
            records = records.with_columns(_by_meter=pl.lit(True))
        else:
            records = records.drop("meter", strict=False)
        keep = ["account" if entity == "account" else "meter", "ts", "amount", "channel", "_line"]
        records = records.select(*keep, *[c for c in records.columns if c == "_by_meter"])
        return Batch("payments", records, _concat(rej))

    def _balances(self, chunk: pl.DataFrame, now: datetime) -> Batch:
        rej = []
        ok = _required(chunk, "meter", rej)
        ts, ts_field, ok = self._dated(chunk, ok, rej)
        balance, bad = _to_float(chunk["balance"])
        rej.append(_reject(chunk, bad & ok, "balance", "balance", "not_a_number", "not a number"))
        ok &= ~bad
        # A prepaid balance may be negative (arrears, 欠费), but not absurdly so.
        big = (balance.abs() > 1e6).fill_null(False)
        rej.append(
            _reject(
                chunk, big & ok, "balance", "balance", "absurd", "balance beyond ±1,000,000 yuan"
            )
        )
        ok &= ~big
        future = (ts > now + FUTURE_TOLERANCE).fill_null(False)
        rej.append(
            _reject(chunk, future & ok, ts_field, ts_field, "future", "timestamp is in the future")
        )
        ok &= ~future
        records = chunk.with_columns(ts=ts, balance=balance).filter(ok)
        records = records.select(
            "meter", "ts", "balance", "_line", *[c for c in _REGISTRATION if c in chunk.columns]
        )
        return Batch("balances", records, _concat(rej))

    def _topology(self, chunk: pl.DataFrame, now: datetime) -> Batch:
        rej = []
        ok = _required(chunk, "meter", rej)
        ok &= _required(chunk, "area_code", rej, ok)
        records = chunk.filter(ok).select(
            "meter", "_line", *[c for c in _REGISTRATION if c in chunk.columns]
        )
        return Batch("topology", records, _concat(rej))


_REGISTRATION = ("account", "name", "address", "area_code", "area_name", "feeder", "kind")


# ---- opening a file ------------------------------------------------------------------------


def open_source(path: Path | str, options: Options | None = None) -> Source:
    """Sniff a file and return a Source ready to stream; raise FileError if it cannot be read."""
    path = Path(path)
    options = options or Options()
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError as exc:
        raise FileError(f"{path}: cannot open: {exc.strerror}") from exc
    if not head:
        raise FileError(f"{path}: the file is empty")
    if head.startswith(b"PAR1"):
        return _open_parquet(path, options)
    if head.startswith(b"PK\x03\x04"):
        return _open_xlsx(path, options)
    if b"\x00" in head[:8192]:
        raise FileError(
            f"{path}: binary data, not a CSV, XLSX or Parquet file "
            f"(NUL byte at offset {head.index(0)})"
        )
    return _open_text(path, head, options)


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
    known = sum(1 for n in norm if n in _ALIAS_TO_CANON)
    points = sum(1 for n in norm if _POINT_RE.match(n) or _CLOCK_RE.match(n))
    return known >= 2 or points >= 24


def _classify_header(path: Path, cells: list, title: str, options: Options) -> Source:
    """Decide the export kind from the header; map columns; find the unit of a load curve."""
    norm = [_norm_header(c) for c in cells]
    clock = [n for n in norm if _CLOCK_RE.match(n)]
    start_labelled = bool(clock) and "24:00" not in clock and ("0:00" in clock or "00:00" in clock)
    columns: dict[str, str] = {}
    points: list[tuple[str, int]] = []
    for raw, n in zip(cells, norm, strict=True):
        k = _point_index(n, start_labelled)
        if k is not None:
            points.append((str(raw).strip(), k))
            continue
        # A unit in brackets after a header name: "值(kWh)", "负荷(kW)".
        base = re.sub(r"[(（\[].*?[)）\]]", "", n)
        canon = _ALIAS_TO_CANON.get(n) or _ALIAS_TO_CANON.get(base)
        if canon and canon not in columns:
            columns[canon] = str(raw)
    src = Source(
        path=path,
        container="",
        encoding=None,
        kind="",
        options=options,
        _columns=columns,
        _points=points,
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
        src.kind = "load_curve"
        src._unit, src.unit_note = _curve_unit(path, cells, title, columns, options)
        return src
    if "register" in columns and "meter" in columns and "date" in columns:
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


def _detect_encoding(path: Path, head: bytes) -> str:
    """UTF-8 or GB18030, decided from the first megabyte. A damaged line further down does not
    change the answer: it is rejected on its own, with its line number."""
    utf8_err = _first_error(head, "utf-8-sig")
    if utf8_err is None or not head[:utf8_err].isascii():
        return "utf-8-sig"  # valid multi-byte UTF-8 does not happen by chance in GBK text
    gb_err = _first_error(head, "gb18030")
    if gb_err is None or b"\n" in head[:gb_err]:
        return "gb18030"
    raise FileError(
        f"{path}: not text in UTF-8 or GBK/GB18030 (byte 0x{head[gb_err]:02x} at offset "
        f"{gb_err}); is it a binary file?"
    )


def _first_error(data: bytes, encoding: str) -> int | None:
    try:
        codecs.getincrementaldecoder(encoding)().decode(data, final=False)
        return None
    except UnicodeDecodeError as exc:
        return exc.start


def _open_text(path: Path, head: bytes, options: Options) -> Source:
    encoding = _detect_encoding(path, head)
    text = head.decode(encoding, errors="replace")
    lines = text.splitlines()
    header_index = None
    for i, line in enumerate(lines[:20]):
        sep = _separator(line)
        cells = next(csv.reader([line], delimiter=sep)) if line.strip() else []
        if _looks_like_header(cells):
            header_index = i
            break
    if header_index is None:
        first = lines[0][:120] if lines else ""
        raise FileError(
            f"{path}: no header row found in the first 20 lines (line 1: {first!r}); "
            "expected column names like 表号, 数据日期, 0:15 … 24:00"
        )
    header_line = lines[header_index]
    sep = _separator(header_line)
    cells = next(csv.reader([header_line], delimiter=sep))
    while cells and not str(cells[-1]).strip():  # a trailing separator on every line
        cells = cells[:-1]
    title = " ".join(lines[:header_index])
    src = _classify_header(path, cells, title, options)
    src.container = "csv"
    src.encoding = "UTF-8" if encoding == "utf-8-sig" else "GB18030"
    src._chunks = _csv_chunks(src, encoding, sep, cells, header_index + 1)
    return src


def _separator(line: str) -> str:
    counts = {s: line.count(s) for s in (",", "\t", ";", "|")}
    return max(counts, key=counts.get) if max(counts.values()) else ","


def _csv_chunks(src: Source, encoding: str, sep: str, cells: list, header_lines: int):
    """Yield (canonical frame, rejections, rows) per chunk of about options.chunk_bytes."""
    n_fields = len(cells)
    sepb = sep.encode()
    names = [f"c{i}" for i in range(n_fields)]
    wanted = {raw: i for i, raw in enumerate(cells)}
    rename = {
        f"c{wanted[raw]}": raw
        for raw in list(src._columns.values()) + [h for h, _ in src._points]
        if raw in wanted
    }
    lineno = 0
    carry = b""
    utf8 = encoding == "utf-8-sig"
    with open(src.path, "rb") as fh:
        while True:
            block = fh.read(src.options.chunk_bytes)
            data = carry + block
            if block:
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                data, carry = data[: cut + 1], data[cut + 1 :]
            else:
                carry = b""
            if not data:
                break
            # Decode the chunk in one go (fast, in C); line by line only when it holds a damaged
            # line, which is then rejected on its own.
            clean = True
            try:
                decoded = data.decode(encoding)
            except UnicodeDecodeError:
                clean = False
            else:
                if not utf8:
                    data = decoded.encode("utf-8")
                del decoded
            raw_lines = data.split(b"\n")
            if raw_lines and raw_lines[-1] == b"":
                raw_lines.pop()
            good, good_lines, rejected = [], [], []
            for raw in raw_lines:
                lineno += 1
                if lineno <= header_lines:
                    continue
                line = raw[:-1] if raw.endswith(b"\r") else raw
                if not line.strip():
                    continue
                if not clean and not line.isascii():  # ASCII is the same in UTF-8 and GB18030
                    try:
                        text = line.decode(encoding)
                    except UnicodeDecodeError as exc:
                        rejected.append(
                            (
                                lineno,
                                "",
                                repr(line[max(0, exc.start - 8) : exc.start + 8]),
                                f"not valid {src.encoding} text (byte 0x{line[exc.start]:02x}"
                                f" at column {exc.start + 1}); truncated or mixed encoding?",
                                "bad_encoding",
                            )
                        )
                        continue
                    if not utf8:
                        line = text.encode("utf-8")
                count = (
                    line.count(sepb) + 1
                    if b'"' not in line
                    else len(next(csv.reader([line.decode("utf-8")], delimiter=sep)))
                )
                if count > n_fields and line.endswith(sepb * (count - n_fields)):
                    line = line[: n_fields - count]  # trailing separators: empty extra fields
                    count = n_fields
                if count != n_fields:
                    rejected.append(
                        (
                            lineno,
                            "",
                            _short(line),
                            _ragged(src, count, n_fields),
                            "wrong_field_count",
                        )
                    )
                    continue
                good.append(line)
                good_lines.append(lineno)
            rej = _rejection_frame(rejected)
            if good:
                try:
                    frame = _parse_lines(good, names, sep)
                except pl.exceptions.ComputeError:  # an unbalanced quote
                    frame = None
                if frame is None or frame.height != len(good):
                    # Quoting that the line split did not foresee: one line at a time.
                    frame = _parse_lines_slow(good, names, sep)
                frame = frame.rename(rename).with_columns(
                    _line=pl.Series(good_lines, dtype=pl.Int64)
                )
                frame = _frame_from_header(src, frame)
            else:
                frame = None
            if frame is not None or rej.height:
                if frame is None:
                    frame = _empty_canonical(src)
                yield frame, rej, len(good) + len(rejected)
            if not block:
                break


def _ragged(src: Source, count: int, n_fields: int) -> str:
    if src.kind == "load_curve":
        points = len(src._points) + count - n_fields
        return f"row has {points} point values, expected 96 ({count} fields, header has {n_fields})"
    return f"row has {count} fields, the header has {n_fields}"


def _short(line: bytes) -> str:
    text = line.decode("utf-8", "replace")
    return text if len(text) <= 80 else text[:77] + "..."


def _parse_lines(lines: list[bytes], names: list[str], sep: str) -> pl.DataFrame:
    body = b"\n".join(lines) + b"\n"
    return pl.read_csv(
        io.BytesIO(body),
        has_header=False,
        new_columns=names,
        separator=sep,
        infer_schema=False,
        truncate_ragged_lines=True,
    ).select(names)


def _parse_lines_slow(lines: list[bytes], names: list[str], sep: str) -> pl.DataFrame:
    rows = [next(csv.reader([ln.decode("utf-8")], delimiter=sep)) for ln in lines]
    rows = [(r + [None] * len(names))[: len(names)] for r in rows]
    return pl.DataFrame(rows, schema=dict.fromkeys(names, pl.String), orient="row")


def _empty_canonical(src: Source) -> pl.DataFrame:
    cols = {c: pl.String for c in src._columns}
    cols.update({f"_p{k}": pl.String for _, k in src._points})
    cols["_line"] = pl.Int64
    return pl.DataFrame(schema=cols)


# ---- XLSX ------------------------------------------------------------------------------------


def _open_xlsx(path: Path, options: Options) -> Source:
    import openpyxl

    try:
        # A file object, so that openpyxl does not judge the file by its name.
        wb = openpyxl.load_workbook(open(path, "rb"), read_only=True, data_only=True)  # noqa: SIM115
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a damaged file
        raise FileError(
            f"{path}: not a readable XLSX workbook (truncated or damaged?): "
            f"{' '.join(str(exc).split())}"
        ) from exc
    for ws in wb.worksheets:
        rows = ws.iter_rows(values_only=True)
        title_parts = []
        for i, row in enumerate(rows, start=1):
            cells = list(row)
            while cells and cells[-1] is None:
                cells.pop()
            if _looks_like_header(cells):
                src = _classify_header(path, cells, " ".join(title_parts), options)
                src.container = f"xlsx sheet {ws.title!r}"
                src._chunks = _xlsx_chunks(src, wb, rows, cells, i)
                return src
            title_parts.extend(str(c) for c in cells if c is not None)
            if i >= 20:
                break
    wb.close()
    raise FileError(
        f"{path}: no sheet has a header row (like 表号, 数据日期, 0:15 … 24:00) in its "
        "first 20 rows"
    )


def _cell_text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        return (
            v.strftime("%Y-%m-%d %H:%M:%S")
            if (v.hour or v.minute or v.second)
            else v.strftime("%Y-%m-%d")
        )
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return repr(v)
    return str(v)


def _xlsx_chunks(src: Source, wb, rows, cells: list, header_row: int, size: int = 20_000):
    n = len(cells)
    names = [str(c) if c is not None else f"_blank{i}" for i, c in enumerate(cells)]
    buf, lines, rejected = [], [], []
    row_no = header_row
    try:
        for row in rows:
            row_no += 1
            values = list(row)
            if all(v is None for v in values):
                continue
            extra = [v for v in values[n:] if v is not None]
            if extra:
                text = _short(",".join("" if v is None else str(v) for v in values).encode())
                rejected.append(
                    (row_no, "", text, _ragged(src, n + len(extra), n), "wrong_field_count")
                )
                continue
            buf.append([_cell_text(v) for v in (values + [None] * n)[:n]])
            lines.append(row_no)
            if len(buf) >= size:
                frame = _xlsx_frame(src, names, buf, lines)
                yield frame, _rejection_frame(rejected), len(buf) + len(rejected)
                buf, lines, rejected = [], [], []
    except Exception as exc:  # noqa: BLE001 - damaged XML inside the workbook
        raise FileError(
            f"{src.path}: XLSX damaged after row {row_no}: {' '.join(str(exc).split())}"
        ) from exc
    finally:
        wb.close()
    if buf or rejected:
        frame = _xlsx_frame(src, names, buf, lines) if buf else _empty_canonical(src)
        yield frame, _rejection_frame(rejected), len(buf) + len(rejected)


def _xlsx_frame(src, names, buf, lines) -> pl.DataFrame:
    frame = pl.DataFrame(buf, schema=dict.fromkeys(names, pl.String), orient="row")
    frame = frame.with_columns(_line=pl.Series(lines, dtype=pl.Int64))
    return _frame_from_header(src, frame)


# ---- Parquet ---------------------------------------------------------------------------------


def _open_parquet(path: Path, options: Options) -> Source:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad footer
        raise FileError(
            f"{path}: not a readable Parquet file (truncated?): {' '.join(str(exc).split())}"
        ) from exc
    cells = pf.schema_arrow.names
    src = _classify_header(path, cells, "", options)
    src.container = "parquet"
    src._chunks = _parquet_chunks(src, pf, cells)
    return src


def _parquet_chunks(src: Source, pf, cells: list, size: int = 1_000_000):
    wanted = [raw for raw in cells if raw in src._columns.values() or raw in dict(src._points)]
    total = pf.metadata.num_rows
    row = 0
    try:
        # polars' own reader (multi-threaded) on row slices: bounded memory, whole speed.
        lf = pl.scan_parquet(src.path).select(wanted)
        while row < total:
            frame = lf.slice(row, size).collect()
            frame = frame.with_columns(
                _line=pl.int_range(row + 1, row + 1 + frame.height, dtype=pl.Int64)
            )
            row += frame.height
            yield _frame_from_header(src, frame), _rejection_frame([]), frame.height
            if not frame.height:
                break
    except Exception as exc:  # noqa: BLE001 - a damaged file raises many kinds of error
        raise FileError(
            f"{src.path}: Parquet data unreadable after row {row} (truncated?): "
            f"{' '.join(str(exc).split())}"
        ) from exc


# ---- helpers ---------------------------------------------------------------------------------


def _needs_strip(s: pl.Series) -> bool:
    if s.dtype != pl.String:
        return True
    return bool(s.unique().str.contains(r"^\s|\s$").any())


def _unit_name(raw: str, default: str) -> str:
    text = raw.strip()
    known = {"kwh": "kWh", "kw": "kW", "m3": "m3", "m³": "m3", "v": "V", "a": "A"}
    return known.get(text.lower(), text) if text else default


def _rejection_frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=REJECTION_SCHEMA, orient="row")


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [f for f in frames if f.height]
    return pl.concat(frames) if frames else _rejection_frame([])


def _reject(
    chunk: pl.DataFrame, mask: pl.Series, column: str, field_name: str, code: str, reason: str
) -> pl.DataFrame:
    mask = mask.fill_null(False)
    if not mask.any():
        return _rejection_frame([])
    bad = chunk.filter(mask)
    value = bad[column].cast(pl.String) if column in bad.columns else pl.lit("")
    return bad.select(
        line=pl.col("_line"),
        field=pl.lit(field_name),
        value=value.fill_null("(empty)") if isinstance(value, pl.Series) else value,
        reason=pl.lit(reason),
        code=pl.lit(code),
    )


def _required(
    chunk: pl.DataFrame, column: str, rej: list, ok: pl.Series | None = None
) -> pl.Series:
    values = chunk[column].cast(pl.String)  # already stripped by Source.batches
    missing = values.is_null() | (values.str.len_bytes() == 0)
    rej.append(
        _reject(
            chunk,
            missing if ok is None else missing & ok,
            column,
            column,
            "missing",
            "a required value is empty",
        )
    )
    return ~missing


def _to_float(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    if s.dtype == pl.String:
        v = s.str.strip_chars().str.replace_all(",", "").cast(pl.Float64, strict=False)
    else:
        v = s.cast(pl.Float64, strict=False)
    bad = (v.is_null() & s.is_not_null()) | v.is_nan().fill_null(False) | s.is_null()
    return v, bad


def _parse_date(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    if s.dtype == pl.Date:
        return s, s.is_null()
    if isinstance(s.dtype, pl.Datetime):
        return s.dt.date(), s.is_null()
    text = s.cast(pl.String).str.strip_chars().str.replace(r"[ T]00:00(:00)?$", "")
    out = pl.select(
        pl.coalesce([text.str.to_date(f, strict=False) for f in _DATE_FORMATS])
    ).to_series()
    return out, out.is_null()


def _parse_ts(s: pl.Series, tz: str) -> tuple[pl.Series, pl.Series]:
    """-> (UTC timestamps, bad mask). Naive values are local time in tz."""
    if isinstance(s.dtype, pl.Datetime):
        if s.dtype.time_zone is None:
            out = _local_to_utc(s.cast(pl.Datetime("us")), tz)
        else:
            out = s.dt.convert_time_zone("UTC").cast(UTC_US)
        return out, out.is_null()
    if s.dtype == pl.Date:
        out = _local_to_utc(s.cast(pl.Datetime("us")), tz)
        return out, out.is_null()
    text = s.cast(pl.String).str.strip_chars().str.replace(r"Z$", "+00:00")
    aware = pl.select(
        pl.coalesce(
            [
                text.str.to_datetime(f, strict=False, time_zone="UTC", time_unit="us")
                for f in _AWARE_FORMATS
            ]
        )
    ).to_series()
    naive = pl.select(
        pl.coalesce(
            [text.str.to_datetime(f, strict=False, time_unit="us") for f in _DATETIME_FORMATS]
            + [text.str.to_date(f, strict=False).cast(pl.Datetime("us")) for f in _DATE_FORMATS]
        )
    ).to_series()
    out = pl.select(pl.coalesce([aware, _local_to_utc(naive, tz)])).to_series()
    return out, out.is_null()


def _local_to_utc(s: pl.Series, tz: str) -> pl.Series:
    """Naive local times -> UTC. In a zone with DST a local time can be missing (spring) or
    doubled (autumn): missing ones become null (rejected as bad timestamps), doubled ones take
    the earlier instant."""
    offset = _fixed_offset(s, tz)
    if offset is not None:  # the usual case (Asia/Shanghai has no DST): plain arithmetic
        return (s.cast(pl.Datetime("us")) - offset).dt.replace_time_zone("UTC")
    return (
        s.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
        .cast(UTC_US)
    )


def _fixed_offset(s: pl.Series, tz: str) -> timedelta | None:
    """The zone's UTC offset if it is the same at the start and end of every local day in `s`
    (so no DST change falls inside the data), else None."""
    zone = ZoneInfo(tz)
    days = s.dt.date().drop_nulls().unique()
    if days.len() == 0 or days.len() > 5000:
        return None
    offsets = set()
    for d in days.to_list():
        offsets.add(datetime.combine(d, dtime.min, zone).utcoffset())
        offsets.add(datetime.combine(d, dtime.max, zone).utcoffset())
        if len(offsets) > 1:
            return None
    return offsets.pop()


def _check_values(
    frame: pl.DataFrame, now: datetime, interval: timedelta, hours: float = 1.0, field: str = ""
):
    """Reject non-numbers, negatives, absurd values, and readings from the future.
    frame has: _line, _raw, _field, value, ts, unit. `hours`: the longest interval one reading
    may cover (energy limits scale with it). Returns (good records, rejections)."""
    units = frame["unit"].unique().to_list()
    limits = {u: LIMITS.get(u, float("inf")) * (hours if u == "kWh" else 1.0) for u in units}
    if len(units) <= 1:  # the usual case: a scalar limit, no per-row look-up
        limit = pl.lit(limits[units[0]] if units else float("inf"), dtype=pl.Float64)
    else:
        limit = pl.col("unit").replace_strict(limits, return_dtype=pl.Float64)
    frame = frame.with_columns(_limit=limit, _end=pl.col("ts") + interval)
    v = pl.col("value")
    bad_num = v.is_null() | v.is_nan() | v.is_infinite()
    neg = (v < 0) & ~bad_num
    absurd = (v > pl.col("_limit")) & ~bad_num & ~neg
    future = (pl.col("_end") > (now + FUTURE_TOLERANCE)) & ~bad_num & ~neg & ~absurd
    early = (pl.col("ts") < EARLIEST) & ~bad_num & ~neg & ~absurd & ~future
    masks = frame.select(
        bad_num=bad_num.fill_null(True),
        neg=neg.fill_null(False),
        absurd=absurd.fill_null(False),
        future=future.fill_null(False),
        early=early.fill_null(False),
    )
    bad_num, neg, absurd, future, early = masks.get_columns()
    rejections = pl.concat(
        how="diagonal_relaxed",
        items=[
            _value_rej(frame, bad_num, "not_a_number", pl.lit("not a number"), field),
            _value_rej(frame, neg, "negative", pl.lit("negative value"), field),
            _value_rej(
                frame,
                absurd,
                "absurd",
                pl.lit("absurd value: ")
                + pl.col("value").round(3).cast(pl.String)
                + pl.lit(" ")
                + pl.col("unit")
                + pl.lit(" in one reading, above the plausible maximum of ")
                + pl.col("_limit").cast(pl.String)
                + pl.lit(" ")
                + pl.col("unit"),
                field,
            ),
            _value_rej(
                frame,
                future,
                "future",
                pl.lit("reading is in the future (interval ends ")
                + pl.col("_end").dt.strftime("%Y-%m-%d %H:%M UTC")
                + pl.lit(")"),
                field,
            ),
            _value_rej(frame, early, "absurd_date", pl.lit("timestamp before 2000"), field),
        ],
    )
    good = frame.filter(~(bad_num | neg | absurd | future | early))
    drop = ["_raw", "_field", "_day", "_unit", "_k", "_limit", "_end", "_orig", "_present"]
    return good.drop(drop, strict=False), rejections


def _value_rej(
    frame: pl.DataFrame, mask: pl.Series, code: str, reason: pl.Expr, field: str = ""
) -> pl.DataFrame:
    if not mask.any():
        return _rejection_frame([])
    bad = frame.filter(mask)
    if "_row" in bad.columns:  # a load curve: the caller names field and value by _row, _k
        return bad.select(
            line=pl.col("_line"),
            field=pl.lit(""),
            value=pl.lit(""),
            reason=reason,
            code=pl.lit(code),
            _row=pl.col("_row"),
            _k=pl.col("_k"),
        )
    raw = pl.col("_raw") if "_raw" in bad.columns else pl.col("value").cast(pl.String)
    return bad.select(
        line=pl.col("_line"),
        field=pl.col("_field") if "_field" in bad.columns else pl.lit(field),
        value=raw.cast(pl.String).fill_null("(empty)"),
        reason=reason,
        code=pl.lit(code),
    )
