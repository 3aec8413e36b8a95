"""What every reader shares: options, the batch a chunk becomes, the rejection frame, and the
value, date and timestamp checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from lianxin.errors import LianxinError
from lianxin.meterdata import (
    LONGEST_INTERVAL,
    METER_MAX_LEN,
    UNITS,
    UTC_US,
    deployment_zone,
    limit,
    to_utc,
    value_checks,
)

REJECTION_SCHEMA = {
    "line": pl.Int64,
    "field": pl.String,
    "value": pl.String,
    "reason": pl.String,
    "code": pl.String,
}
BAD_TS = "not a timestamp like 2024-03-01 08:15:00 (or a local time skipped by a DST change)"
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
    time_zone: str = field(default_factory=deployment_zone)
    unit: str | None = None  # "kWh" or "kW" for load curves when the file does not say
    ts_marks: str = "start"  # long format: timestamps mark the interval "start" or "end"
    interval_minutes: int = 15  # long format with ts_marks="end"; interval registers' default
    interval_given: bool = False  # interval registers: use interval_minutes, do not infer it
    spread: bool = False  # interval registers: spread a gap-spanning difference evenly
    register_digits: int | None = None  # register width (rollover at 10**digits); None: inferred
    replaced_below: float | None = None  # a register falling to <= this is a replaced meter
    # (meters, start, end) -> store rows (meter, ts, value, unit): earlier registers, so a file's
    # first point has its predecessor. Set by the pipeline; None in pure reads.
    previous: object = None
    # Meter replacements (换表): new meter -> [(old meter, replaced at (UTC), old meter's final
    # register, new meter's initial register)]. Set by the pipeline from care.MeterReplacement.
    replacements: dict | None = None
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
    # The distinct meters of the records (or a few more) when the reader has them at hand:
    # the pipeline looks them up instead of finding them among millions of records.
    meters: pl.Series | None = None


_REGISTRATION = ("account", "name", "address", "area_code", "area_name", "feeder", "kind")


def _ragged(src, count: int, n_fields: int) -> str:
    if src.kind in ("load_curve", "register_curve"):
        points = len(src._points) + count - n_fields
        return f"row has {points} point values, expected 96 ({count} fields, header has {n_fields})"
    return f"row has {count} fields, the header has {n_fields}"


def _short(line: bytes) -> str:
    text = line.decode("utf-8", "replace")
    return text if len(text) <= 80 else text[:77] + "..."


def _needs_strip(s: pl.Series) -> bool:
    if s.dtype != pl.String:
        return True
    return bool(s.unique().str.contains(r"^\s|\s$").any())


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
    if column not in ("meter", "account"):
        return ~missing
    # Meter and account numbers have the care records' width: a longer one is a wrong column
    # or a damaged cell, which no registration can take in.
    long = (values.str.len_chars() > METER_MAX_LEN).fill_null(False) & ~missing
    rej.append(
        _reject(
            chunk,
            long if ok is None else long & ok,
            column,
            column,
            "bad_meter",
            f"longer than {METER_MAX_LEN} characters: not a {column} number",
        )
    )
    return ~missing & ~long


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
    out = _first_format(
        text, [lambda t, f=f: t.str.to_date(f, strict=False) for f in _DATE_FORMATS], pl.Date
    )
    return out, out.is_null()


def _first_format(text: pl.Series, parsers: list, dtype, candidates=None) -> pl.Series:
    """What `pl.coalesce([parse(text) for parse in parsers])` gives, with each parser tried
    only on the values the ones before it left unread: a file writes one format, so the first
    (or second) parser reads nearly all, and the others see a handful."""
    out = pl.repeat(None, len(text), dtype=dtype, eager=True).alias(text.name)
    todo = text.is_not_null() if candidates is None else candidates & text.is_not_null()
    for parse in parsers:
        idx = todo.arg_true()
        if not len(idx):
            break
        if len(idx) == len(text):
            out = parse(text).cast(dtype)
        else:
            out = out.scatter(idx, parse(text.gather(idx)).cast(dtype))
        todo = todo & out.is_null()
    return out


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
    if s.dtype == pl.String and len(s) >= 10_000:
        # A long export repeats its times once per meter (97 distinct values in a million
        # rows): each distinct text is parsed once and the result joined back, a quarter of
        # the time of the regular expressions and formats on every row.
        distinct = s.unique()
        if len(distinct) * 8 <= len(s):
            parsed, _bad = _parse_ts(distinct, tz)
            table = pl.DataFrame({"_text": distinct, "_ts": parsed})
            out = (
                s.to_frame("_text")
                .join(table, on="_text", how="left", maintain_order="left")
                .get_column("_ts")
            )
            return out, out.is_null()
    text = s.cast(pl.String).str.strip_chars().str.replace(r"Z$", "+00:00")
    # Only a value that ends with an offset can be read by an aware format (%z is last in each).
    offset = text.str.contains(r"[+-]\d\d(:?\d\d)?$").fill_null(False)
    aware = _first_format(
        text,
        [
            lambda t, f=f: t.str.to_datetime(f, strict=False, time_zone="UTC", time_unit="us")
            for f in _AWARE_FORMATS
        ],
        UTC_US,
        candidates=offset,
    )
    naive = _first_format(
        text,
        [
            lambda t, f=f: t.str.to_datetime(f, strict=False, time_unit="us")
            for f in _DATETIME_FORMATS
        ]
        + [
            lambda t, f=f: t.str.to_date(f, strict=False).cast(pl.Datetime("us"))
            for f in _DATE_FORMATS
        ],
        pl.Datetime("us"),
        candidates=aware.is_null(),
    )
    out = pl.select(pl.coalesce([aware, _local_to_utc(naive, tz)])).to_series()
    return out, out.is_null()


def _local_to_utc(s: pl.Series, tz: str) -> pl.Series:
    """Naive local times -> UTC by the contract's one DST policy (a skipped local time becomes
    null: rejected as a bad timestamp)."""
    return to_utc(s, tz)


def _check_values(
    frame: pl.DataFrame,
    now: datetime,
    interval: timedelta,
    covers: timedelta = LONGEST_INTERVAL,
    field: str = "",
):
    """Reject non-numbers, negatives, absurd values, units the contract does not know, and
    readings from the future (lianxin.meterdata's checks).
    frame has: _line, _raw, _field, value, ts, unit. `covers`: the interval one reading covers
    (the plausibility limit of an interval quantity scales with it); `interval`: how far after
    ts the reading ends. Returns (good records, rejections)."""
    units = frame["unit"].unique().to_list()
    limits = {u: limit(u, covers) for u in units}
    if len(units) <= 1:  # the usual case: a scalar limit, no per-row look-up
        limit_expr = pl.lit(limits[units[0]] if units else float("inf"), dtype=pl.Float64)
    else:
        limit_expr = pl.col("unit").replace_strict(limits, return_dtype=pl.Float64)
    frame = frame.with_columns(_limit=limit_expr, _end=pl.col("ts") + interval)
    checks = value_checks(pl.col("value"), pl.col("ts"), pl.col("_limit"), now, pl.col("_end"))
    unknown = [u for u in units if u not in UNITS]
    if unknown:
        refused = pl.col("unit").is_in(unknown)
        checks = {code: mask & ~refused for code, mask in checks.items()}
        checks["unknown_unit"] = refused.fill_null(False)
    masks = frame.select(**checks)
    bad_num, neg, absurd, future, early = (masks[c] for c in list(checks)[:5])
    unknown_unit = masks["unknown_unit"] if unknown else None
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
            _unit_rej(frame, unknown_unit) if unknown else _rejection_frame([]),
        ],
    )
    refused = bad_num | neg | absurd | future | early
    if unknown_unit is not None:
        refused = refused | unknown_unit
    # (Nothing refused, the usual chunk: the frame as it is, not copied through a filter.)
    good = frame.filter(~refused) if refused.any() else frame
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


def _dated(src, chunk: pl.DataFrame, ok: pl.Series, rej: list):
    """The rows' timestamps (a `ts` or a `date` column), rejecting unreadable ones."""
    ts_field = "ts" if "ts" in chunk.columns else "date"
    ts, bad_ts = _parse_ts(chunk[ts_field], src.options.time_zone)
    rej.append(_reject(chunk, bad_ts & ok, ts_field, ts_field, "bad_timestamp", BAD_TS))
    return ts, ts_field, ok & ~bad_ts


def _unit_rej(frame: pl.DataFrame, mask: pl.Series) -> pl.DataFrame:
    return frame.filter(mask).select(
        line=pl.col("_line"),
        field=pl.lit("unit"),
        value=pl.col("unit"),
        reason=pl.lit(f"not a known unit (known: {', '.join(UNITS)})"),
        code=pl.lit("unknown_unit"),
    )
