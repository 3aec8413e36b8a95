"""Pushed readings, meter events, payments and prepaid balances, from JSON or CSV to validated
frames plus per-row errors.

Shared by the HTTP push API and the MQTT subscriber. No Django here: meter look-up is passed in as
a function, so this module can be tested and benchmarked alone.

Work is done column by column (polars), not row by row, so a batch of 10,000 readings costs a few
milliseconds. Each row that fails a check gets one error per failing field, naming the row index
(0-based, in the order sent), the field, the value and the reason; the other rows go through.
"""

import io
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import polars as pl

from lianxin.errors import LianxinError
from lianxin.ingest.readers import ALIASES
from lianxin.meterdata import (
    CHECK_FIELD,
    EARLIEST,
    FUTURE_TOLERANCE,
    METER_MAX_LEN,
    STORED_EVENTS,
    UNITS,
    limit,
    to_utc,
    value_checks,
)

# Units, their meter kinds and plausibility limits are the contract's (lianxin.meterdata), as for
# the file importers. A pushed reading does not say the interval it covers: it is judged as one
# of the longest interval (an hour), as a long-format file's is.
EVENT_KINDS = STORED_EVENTS
KEEP_ERRORS = 1000
# What the push API says for each of the contract's reading checks (the field is named apart).
_REASONS = {
    "not_a_number": "not a finite number",
    "negative": "negative",
    "future": f"in the future (more than {FUTURE_TOLERANCE.seconds // 60} minutes ahead)",
    "absurd_date": "before 2000-01-01: a wrong date",
}

_AWARE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M")


class BodyError(LianxinError):
    """The body as a whole cannot be read (not JSON, not CSV, wrong shape): nothing is taken."""


class TooManyRows(BodyError):
    """The body holds more rows than one request may: bounded work and memory per request."""


# Rows (readings and events together) one request or message may hold: ten times the advised
# batch, small enough that an all-bad batch costs seconds and a few hundred MB, not minutes and GB.
MAX_ROWS = 100_000


def _check_size(body: bytes | str) -> None:
    """Refuse an oversized batch before decoding it: decoding is where the memory goes. Every
    JSON row is an object (one "{", a few commas), so these counts bound the rows from above."""
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if data.count(b"{") > 2 * MAX_ROWS + 1 or data.count(b",") > 10 * MAX_ROWS:
        raise TooManyRows(f"the batch holds more than {MAX_ROWS:,} rows: send smaller batches")


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    value: object
    reason: str
    code: str  # one word per kind of problem, shared with the file importers' quarantine
    line: int | None = None  # CSV only: the line in the body (the header is line 1)

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.line is None:
            del out["line"]
        return out


@dataclass
class Parsed:
    """Valid rows (with their `row` index) and the errors of the others."""

    readings: pl.DataFrame  # row, meter, ts, value, unit
    events: pl.DataFrame  # row, meter, ts, event, detail
    errors: list[RowError]
    received: int  # rows in the body, of every kind together
    payments: pl.DataFrame | None = None  # row, account, meter, ts, amount, channel
    balances: pl.DataFrame | None = None  # row, meter, ts, balance


# ---- JSON -------------------------------------------------------------------------------------


def parse_json(
    body: bytes | str,
    *,
    meter_kinds: Callable[[Iterable[str]], dict[str, str]],
    time_zone: str,
    now: datetime | None = None,
) -> Parsed:
    """A JSON body (see decode_json) to valid rows and per-row errors."""
    readings, events, payments, balances = decode_json(body)
    return parse_rows(
        readings,
        events,
        payments=payments,
        balances=balances,
        meter_kinds=meter_kinds,
        time_zone=time_zone,
        now=now,
    )


def decode_json(body: bytes | str) -> tuple[list, list, list, list]:
    """The readings, events, payments and balances of a JSON document. Three shapes are
    accepted:

    - {"readings": [...], "events": [...], "payments": [...], "balances": [...], "unit": "kWh"}:
      any list may be absent; a top-level `unit` applies to readings that do not name their own;
    - a bare list of readings;
    - one reading or one event as an object (it has a "meter" key), handy for a meter that
      publishes each reading on its own.

    A reading is {"meter": "3200012345", "ts": "2026-11-27T08:15:00+08:00", "value": 0.42,
    "unit": "kWh"}. An event is {"meter": ..., "ts": ..., "event": "power_off", "detail": "..."};
    detail is optional text (an object is kept as its JSON text). Other keys are ignored.
    A payment is {"account": "3000000001" (户号; or "meter"), "ts": ..., "amount": 50.0,
    "channel": "wechat"}; a prepaid balance is {"meter": ..., "ts": ..., "balance": 12.5}.
    """
    _check_size(body)
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BodyError(
            "body is not a batch: JSON nested too deeply (a batch is at most 3 levels deep)"
        ) from None
    default_unit = None
    payments: list = []
    balances: list = []
    if isinstance(doc, list):
        readings, events = doc, []
    elif isinstance(doc, dict) and "meter" in doc:
        readings, events = ([], [doc]) if "event" in doc else ([doc], [])
    elif isinstance(doc, dict):
        unknown = sorted(set(doc) - {"readings", "events", "payments", "balances", "unit"})
        if unknown:
            raise BodyError(
                f"unknown top-level key(s) {', '.join(map(repr, unknown))}: expected "
                "'readings', 'events', 'payments', 'balances' and optionally 'unit'"
            )
        readings = doc.get("readings", [])
        events = doc.get("events", [])
        payments = doc.get("payments", [])
        balances = doc.get("balances", [])
        default_unit = doc.get("unit")
        if default_unit is not None and (
            type(default_unit) is not str or default_unit not in UNITS
        ):
            raise BodyError(
                f"top-level unit {_short(default_unit)!r} is not one of {', '.join(UNITS)}"
            )
        lists = (("readings", readings), ("events", events))
        lists += (("payments", payments), ("balances", balances))
        for name, value in lists:
            if not isinstance(value, list):
                raise BodyError(f"'{name}' must be a JSON array, not {_json_type(value)}")
    else:
        raise BodyError(
            f"body must be a JSON object with 'readings' and/or 'events', not {_json_type(doc)}"
        )
    if not readings and not events and not payments and not balances:
        raise BodyError("the batch holds no readings and no events")
    if len(readings) + len(events) + len(payments) + len(balances) > MAX_ROWS:
        raise TooManyRows(f"the batch holds more than {MAX_ROWS:,} rows: send smaller batches")
    if default_unit is not None:
        for r in readings:
            if type(r) is dict and r.get("unit") is None:
                r["unit"] = default_unit
    return readings, events, payments, balances


def parse_rows(
    readings: list,
    events: list,
    *,
    meter_kinds: Callable[[Iterable[str]], dict[str, str]],
    time_zone: str,
    now: datetime | None = None,
    payments: list = (),
    balances: list = (),
) -> Parsed:
    """Decoded JSON rows to valid frames and per-row errors (row = index in its list).
    Payments name an account (户号) or a meter; `meter_kinds.accounts`, when the directory
    has it, says which accounts are known."""
    now = now or datetime.now(UTC)
    errors: list[RowError] = []
    cols = _object_columns(readings, ("meter", "ts", "value", "unit"), "", errors)
    reading_frame = _readings_frame(cols, errors, "", meter_kinds, time_zone, now)

    ev_errors: list[RowError] = []
    ev_cols = _object_columns(events, ("meter", "ts", "event", "detail"), "events.", ev_errors)
    event_frame = _events_frame(ev_cols, ev_errors, meter_kinds, time_zone, now)
    pay_errors: list[RowError] = []
    pay_cols = _object_columns(
        list(payments), ("account", "meter", "ts", "amount", "channel"), "payments.", pay_errors
    )
    pay_frame = _payments_frame(pay_cols, pay_errors, meter_kinds, time_zone, now)
    bal_errors: list[RowError] = []
    bal_cols = _object_columns(list(balances), ("meter", "ts", "balance"), "balances.", bal_errors)
    bal_frame = _balances_frame(bal_cols, bal_errors, meter_kinds, time_zone, now)
    return Parsed(
        reading_frame,
        event_frame,
        errors + ev_errors + pay_errors + bal_errors,
        len(readings) + len(events) + len(payments) + len(balances),
        payments=pay_frame,
        balances=bal_frame,
    )


def _time_checks(now) -> list:
    return [
        (
            pl.col("ts").is_null() & pl.col("ts_raw").is_not_null(),
            "ts",
            "ts_raw",
            "not an ISO 8601 time (e.g. 2026-11-27T08:15:00+08:00)",
            "bad_time",
        ),
        (pl.col("ts") > now + FUTURE_TOLERANCE, "ts", "ts_raw", "in the future", "future"),
        (pl.col("ts") < EARLIEST, "ts", "ts_raw", "before 2000-01-01: a wrong date", "absurd_date"),
    ]


def _payments_frame(cols, errors, meter_kinds, time_zone, now) -> pl.DataFrame:
    """Payments: the file importer's checks (a positive amount of at most 1,000,000 yuan, not
    in the future), keyed by a known account (户号) or a known meter."""
    n = len(cols["ts"])
    out_schema = {
        "row": pl.Int64,
        "account": pl.String,
        "meter": pl.String,
        "ts": pl.Datetime("us", "UTC"),
        "amount": pl.Float64,
        "channel": pl.String,
    }
    if n == 0:
        return pl.DataFrame(schema=out_schema)
    prefix = "payments."
    df = pl.DataFrame(
        {
            "row": pl.Series(range(n), dtype=pl.Int64),
            "account": pl.Series(
                _strings(cols["account"], prefix + "account", errors), dtype=pl.String
            ),
            "meter": pl.Series(_strings(cols["meter"], prefix + "meter", errors), dtype=pl.String),
            "ts_raw": pl.Series(_strings(cols["ts"], prefix + "ts", errors), dtype=pl.String),
            "amount": pl.Series(
                _numbers(cols["amount"], prefix + "amount", errors), dtype=pl.Float64
            ),
            "channel": pl.Series(
                _strings(cols["channel"], prefix + "channel", errors), dtype=pl.String
            ).fill_null(""),
        }
    )
    df = df.with_columns(ts=parse_times(df["ts_raw"], time_zone))
    _required(df, ("ts_raw", "amount"), prefix, errors)
    for i in df.filter(pl.col("account").is_null() & pl.col("meter").is_null())["row"].to_list():
        errors.append(
            RowError(i, prefix + "account", None, "missing (give account or meter)", "missing")
        )
    checks = _time_checks(now) + [
        (
            pl.col("amount").is_nan() | pl.col("amount").is_infinite(),
            "amount",
            "amount",
            "not a finite number",
            "not_a_number",
        ),
        (
            pl.col("amount") <= 0,
            "amount",
            "amount",
            "payment amount must be positive (refunds are not payments)",
            "negative",
        ),
        (pl.col("amount") > 1e6, "amount", "amount", "amount above 1,000,000 yuan", "absurd"),
        (
            pl.col("account").str.len_chars() > METER_MAX_LEN,
            "account",
            "account",
            f"longer than {METER_MAX_LEN} characters",
            "bad_meter",
        ),
    ]
    _apply_checks(df, checks, prefix, errors)
    by_meter = df.filter(pl.col("account").is_null() & pl.col("meter").is_not_null())
    accounts_of = getattr(meter_kinds, "accounts_of", None)
    known_accounts = getattr(meter_kinds, "known_accounts", None)
    found = (
        accounts_of(by_meter["meter"].unique().to_list()) if accounts_of and by_meter.height else {}
    )
    df = df.with_columns(
        account=pl.coalesce(
            "account", pl.col("meter").replace_strict(found, default=None, return_dtype=pl.String)
        )
    )
    for i, m in (
        by_meter.filter(~pl.col("meter").is_in(list(found))).select("row", "meter").iter_rows()
    ):
        errors.append(
            RowError(
                i,
                prefix + "meter",
                m,
                "unknown meter: register it in Lianxin first",
                "unknown_meter",
            )
        )
    sent = df.filter(pl.col("meter").is_null() & pl.col("account").is_not_null())
    if known_accounts is not None and sent.height:
        known = known_accounts(sent["account"].unique().to_list())
        for i, a in (
            sent.filter(~pl.col("account").is_in(list(known))).select("row", "account").iter_rows()
        ):
            errors.append(
                RowError(
                    i,
                    prefix + "account",
                    a,
                    "unknown account: register its meters in Lianxin first",
                    "unknown_meter",
                )
            )
    return df.filter(~pl.Series(_mask({e.row for e in errors}, n), dtype=pl.Boolean)).select(
        list(out_schema)
    )


def _balances_frame(cols, errors, meter_kinds, time_zone, now) -> pl.DataFrame:
    """Prepaid (费控) balances: a known meter, a number within ±1,000,000 yuan (arrears are
    negative), not in the future."""
    n = len(cols["meter"])
    out_schema = {
        "row": pl.Int64,
        "meter": pl.String,
        "ts": pl.Datetime("us", "UTC"),
        "balance": pl.Float64,
    }
    if n == 0:
        return pl.DataFrame(schema=out_schema)
    prefix = "balances."
    df = pl.DataFrame(
        {
            "row": pl.Series(range(n), dtype=pl.Int64),
            "meter": pl.Series(_strings(cols["meter"], prefix + "meter", errors), dtype=pl.String),
            "ts_raw": pl.Series(_strings(cols["ts"], prefix + "ts", errors), dtype=pl.String),
            "balance": pl.Series(
                _numbers(cols["balance"], prefix + "balance", errors), dtype=pl.Float64
            ),
        }
    )
    df = df.with_columns(ts=parse_times(df["ts_raw"], time_zone))
    _required(df, ("meter", "ts_raw", "balance"), prefix, errors)
    checks = _time_checks(now) + [
        (
            pl.col("balance").is_nan() | pl.col("balance").is_infinite(),
            "balance",
            "balance",
            "not a finite number",
            "not_a_number",
        ),
        (
            pl.col("balance").abs() > 1e6,
            "balance",
            "balance",
            "balance beyond ±1,000,000 yuan",
            "absurd",
        ),
        (
            pl.col("meter").str.len_chars() > METER_MAX_LEN,
            "meter",
            "meter",
            f"longer than {METER_MAX_LEN} characters",
            "bad_meter",
        ),
    ]
    _apply_checks(df, checks, prefix, errors)
    _check_meters(df, prefix, errors, meter_kinds, unit_column=False)
    return df.filter(~pl.Series(_mask({e.row for e in errors}, n), dtype=pl.Boolean)).select(
        list(out_schema)
    )


def _json_type(value) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else "null"
    )


def _object_columns(rows: list, fields: tuple[str, ...], prefix: str, errors: list[RowError]):
    """Column lists from a list of JSON objects; a row that is not an object is an error."""
    if not set(map(type, rows)) <= {dict}:
        clean = []
        for i, r in enumerate(rows):
            if type(r) is not dict:
                errors.append(
                    RowError(
                        i, prefix + "*", _short(r), f"is {_json_type(r)}, not an object", "bad_row"
                    )
                )
                r = {}
            clean.append(r)
        rows = clean
    return {f: [r.get(f) for r in rows] for f in fields}


# ---- CSV --------------------------------------------------------------------------------------

CSV_COLUMNS = ("meter", "ts", "value", "unit")
_CSV_ALIASES = {alias.lower(): name for name in CSV_COLUMNS for alias in ALIASES[name]}


def _decode(body: bytes, charset: str | None) -> str:
    if charset:
        try:
            return body.decode(charset)
        except LookupError:
            raise BodyError(f"unknown charset {charset!r} in Content-Type") from None
        except UnicodeDecodeError as exc:
            raise BodyError(
                f"CSV body is not {charset} (byte {exc.start}): fix the charset in Content-Type"
            ) from None
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            return body.decode("gb18030")
        except UnicodeDecodeError:
            raise BodyError(
                f"CSV body is neither UTF-8 nor GB18030 (byte {exc.start}): re-encode it as UTF-8 "
                "or name its charset in Content-Type"
            ) from None


def parse_csv(
    body: bytes,
    *,
    meter_kinds: Callable[[Iterable[str]], dict[str, str]],
    time_zone: str,
    now: datetime | None = None,
    default_unit: str | None = None,
    charset: str | None = None,
) -> Parsed:
    """A CSV body with a header naming meter, ts, value and optionally unit, in any order, by
    these names or the Chinese ones utilities use (表号, 时间, 值, 单位 …: the file importers'
    aliases). Text is UTF-8 unless the Content-Type names a charset; a body that is not UTF-8 and
    names none is read as GB18030 (which covers GBK), as Chinese exports often are."""
    if body.count(b"\n") > MAX_ROWS + 1:
        raise TooManyRows(f"the batch holds more than {MAX_ROWS:,} rows: send smaller batches")
    if b"\x00" in body[:4096]:
        raise BodyError("body is not CSV text (it holds NUL bytes: binary data?)")
    text = _decode(body, charset)
    if not text.strip():
        raise BodyError("the batch holds no readings and no events")
    try:
        frame = pl.read_csv(io.StringIO(text), infer_schema=False, has_header=True)
    except Exception as exc:  # noqa: BLE001 - polars raises several kinds; all mean unreadable CSV
        raise BodyError(f"body is not readable CSV: {' '.join(str(exc).split())[:300]}") from None
    sent = [c.strip() for c in frame.columns]
    names = [_CSV_ALIASES.get(c.lower(), c) for c in sent]
    if len(set(names)) < len(names):
        raise BodyError(f"CSV header names a column twice: {', '.join(sent)}")
    frame.columns = names
    missing = [c for c in CSV_COLUMNS[:3] if c not in names]
    if missing or ("unit" not in names and default_unit is None):
        need = list(missing) + (["unit"] if "unit" not in names and default_unit is None else [])
        raise BodyError(
            f"CSV header lacks column(s) {', '.join(need)}: the header must name meter, ts, value "
            f"and unit (or give ?unit=kWh); found {', '.join(sent) or 'no columns'}"
        )
    if default_unit is not None and default_unit not in UNITS:
        raise BodyError(f"unit {default_unit!r} is not one of {', '.join(UNITS)}")
    now = now or datetime.now(UTC)
    errors: list[RowError] = []
    n = frame.height
    value_text = frame["value"].str.strip_chars()
    values = value_text.cast(pl.Float64, strict=False)
    bad_value = (value_text.is_not_null() & (value_text != "") & values.is_null()).arg_true()
    for i in bad_value.to_list():
        errors.append(RowError(i, "value", value_text[i], "not a number", "not_a_number"))
    unit = (
        frame["unit"].str.strip_chars()
        if "unit" in names
        else pl.repeat(default_unit, n, eager=True)
    )
    if default_unit is not None:
        unit = unit.fill_null(default_unit)
        unit = pl.select(pl.when(unit == "").then(pl.lit(default_unit)).otherwise(unit)).to_series()
    cols = {
        "meter": frame["meter"].str.strip_chars().to_list(),
        "ts": frame["ts"].str.strip_chars().to_list(),
        "value": values.to_list(),
        "unit": unit.to_list(),
    }
    readings = _readings_frame(cols, errors, "", meter_kinds, time_zone, now, typed=True)
    errors = [RowError(e.row, e.field, e.value, e.reason, e.code, line=e.row + 2) for e in errors]
    return Parsed(readings, _empty_events(), errors, n)


# ---- checks -----------------------------------------------------------------------------------


def _readings_frame(cols, errors, prefix, meter_kinds, time_zone, now, typed=False) -> pl.DataFrame:
    n = len(cols["meter"])
    meter = _strings(cols["meter"], prefix + "meter", errors)
    ts_raw = _strings(cols["ts"], prefix + "ts", errors)
    unit = _strings(cols["unit"], prefix + "unit", errors)
    value = cols["value"] if typed else _numbers(cols["value"], prefix + "value", errors)
    df = pl.DataFrame(
        {
            "row": pl.Series(range(n), dtype=pl.Int64),
            "meter": pl.Series(meter, dtype=pl.String),
            "ts_raw": pl.Series(ts_raw, dtype=pl.String),
            "value": pl.Series(value, dtype=pl.Float64),
            "unit": pl.Series(unit, dtype=pl.String),
        }
    )
    df = df.with_columns(ts=parse_times(df["ts_raw"], time_zone))
    _required(df, ("meter", "ts_raw", "value", "unit"), prefix, errors)
    checks = [
        (
            pl.col("ts").is_null() & pl.col("ts_raw").is_not_null(),
            "ts",
            "ts_raw",
            "not an ISO 8601 time (e.g. 2026-11-27T08:15:00+08:00)",
            "bad_time",
        ),
        (
            pl.col("meter").str.len_chars() > METER_MAX_LEN,
            "meter",
            "meter",
            f"longer than {METER_MAX_LEN} characters",
            "bad_meter",
        ),
        (
            ~pl.col("unit").is_in(list(UNITS)) & pl.col("unit").is_not_null(),
            "unit",
            "unit",
            f"not a known unit ({', '.join(UNITS)})",
            "unknown_unit",
        ),
    ]
    # A reading's value and time: the contract's row checks (lianxin.meterdata), every field
    # of a row reported. A missing value or time was reported above as missing.
    limits = {u: limit(u) for u in UNITS}
    contract = value_checks(
        pl.col("value"),
        pl.col("ts"),
        pl.col("unit").replace_strict(limits, default=float("inf"), return_dtype=pl.Float64),
        now,
        every_field=True,
    )
    for code, mask in contract.items():
        field = CHECK_FIELD[code]
        present = pl.col("value" if field == "value" else "ts").is_not_null()
        if code == "absurd":
            # Named per unit, with the unit's limit, so the sender sees which limit it broke.
            for unit_name, top in limits.items():
                checks.append(
                    (
                        mask & (pl.col("unit") == unit_name),
                        "value",
                        "value",
                        f"absurd for {unit_name} (above {top:g}): wrong unit or a meter fault",
                        code,
                    )
                )
        else:
            shown = "ts_raw" if field == "ts" else "value"
            checks.append((mask & present, field, shown, _REASONS[code], code))
    _apply_checks(df, checks, prefix, errors)
    _check_meters(df, prefix, errors, meter_kinds, unit_column=True)
    return df.filter(~pl.Series(_mask({e.row for e in errors}, n), dtype=pl.Boolean)).select(
        "row", "meter", "ts", "value", "unit"
    )


def _events_frame(cols, errors, meter_kinds, time_zone, now) -> pl.DataFrame:
    n = len(cols["meter"])
    if n == 0:
        return _empty_events()
    prefix = "events."
    meter = _strings(cols["meter"], prefix + "meter", errors)
    ts_raw = _strings(cols["ts"], prefix + "ts", errors)
    event = _strings(cols["event"], prefix + "event", errors)
    detail = []
    for i, d in enumerate(cols["detail"]):
        if type(d) is dict:
            d = json.dumps(d, ensure_ascii=False, sort_keys=True)
        if type(d) is str and _UNSTORABLE.search(d):
            errors.append(RowError(i, prefix + "detail", _short(d), _UNSTORABLE_REASON, "bad_text"))
            detail.append("")
        elif d is None or type(d) is str:
            detail.append(d or "")
        else:
            errors.append(
                RowError(i, prefix + "detail", _short(d), "must be text or an object", "wrong_type")
            )
            detail.append("")
    df = pl.DataFrame(
        {
            "row": pl.Series(range(n), dtype=pl.Int64),
            "meter": pl.Series(meter, dtype=pl.String),
            "ts_raw": pl.Series(ts_raw, dtype=pl.String),
            "event": pl.Series(event, dtype=pl.String),
            "detail": pl.Series(detail, dtype=pl.String),
        }
    )
    df = df.with_columns(ts=parse_times(df["ts_raw"], time_zone))
    _required(df, ("meter", "ts_raw", "event"), prefix, errors)
    checks = [
        (
            pl.col("ts").is_null() & pl.col("ts_raw").is_not_null(),
            "ts",
            "ts_raw",
            "not an ISO 8601 time (e.g. 2026-11-27T08:15:00+08:00)",
            "bad_time",
        ),
        (pl.col("ts") > now + FUTURE_TOLERANCE, "ts", "ts_raw", "in the future", "future"),
        (pl.col("ts") < EARLIEST, "ts", "ts_raw", "before 2000-01-01: a wrong date", "absurd_date"),
        (
            ~pl.col("event").is_in(list(EVENT_KINDS)) & pl.col("event").is_not_null(),
            "event",
            "event",
            f"not a known event ({', '.join(EVENT_KINDS)})",
            "unknown_event",
        ),
    ]
    _apply_checks(df, checks, prefix, errors)
    _check_meters(df, prefix, errors, meter_kinds, unit_column=False)
    return df.filter(~pl.Series(_mask({e.row for e in errors}, n), dtype=pl.Boolean)).select(
        "row", "meter", "ts", "event", "detail"
    )


def _empty_events() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "row": pl.Int64,
            "meter": pl.String,
            "ts": pl.Datetime("us", "UTC"),
            "event": pl.String,
            "detail": pl.String,
        }
    )


def _required(df, fields, prefix, errors) -> None:
    if not any(df[f].null_count() for f in fields):
        return
    reported = {(e.row, e.field) for e in errors}  # wrong types were reported already
    for f in fields:
        name = prefix + ("ts" if f == "ts_raw" else f)
        for i in df.filter(pl.col(f).is_null())["row"].to_list():
            if (i, name) not in reported and (i, prefix + "*") not in reported:
                errors.append(RowError(i, name, None, "missing", "missing"))


def _apply_checks(df, checks, prefix, errors) -> None:
    # One pass to see whether any check fails at all (the usual answer is no), then the details.
    conds = [cond.fill_null(False) for cond, *_ in checks]
    if not df.select(pl.any_horizontal(conds).any()).item():
        return
    for cond, field, shown, reason, code in checks:
        hits = df.filter(cond.fill_null(False)).select("row", shown)
        for i, v in hits.iter_rows():
            errors.append(RowError(i, prefix + field, v, reason, code))


def _check_meters(df, prefix, errors, meter_kinds, unit_column) -> None:
    wanted = df.filter(pl.col("meter").is_not_null())["meter"].unique().to_list()
    kinds = meter_kinds(wanted) if wanted else {}
    unknown = [m for m in wanted if m not in kinds]
    if unknown:
        for i, m in df.filter(pl.col("meter").is_in(unknown)).select("row", "meter").iter_rows():
            errors.append(
                RowError(
                    i,
                    prefix + "meter",
                    m,
                    "unknown meter: register it in Lianxin first",
                    "unknown_meter",
                )
            )
    units_sent = set(df["unit"].drop_nulls().unique().to_list()) if unit_column else set()
    kinds_seen = set(kinds.values())
    if any(not kinds_seen <= UNITS[u].kinds for u in units_sent if u in UNITS):
        kind_of = pl.col("meter").replace_strict(kinds, default=None, return_dtype=pl.String)
        mismatch = df.filter(pl.col("meter").is_in(list(kinds)) & pl.col("unit").is_in(list(UNITS)))
        mismatch = mismatch.with_columns(kind=kind_of)
        for unit_name, unit in UNITS.items():
            hits = mismatch.filter(
                (pl.col("unit") == unit_name) & ~pl.col("kind").is_in(list(unit.kinds))
            )
            for i, u, k in hits.select("row", "unit", "kind").iter_rows():
                errors.append(
                    RowError(
                        i, prefix + "unit", u, f"{u} does not fit a {k} meter", "unit_mismatch"
                    )
                )


def _mask(bad: set[int], n: int) -> list[bool]:
    mask = [False] * n
    for i in bad:
        mask[i] = True
    return mask


# Text no store can keep: a NUL (PostgreSQL refuses it) or a lone UTF-16 surrogate (JSON allows
# "\ud800", UTF-8 cannot encode it). Such a row is rejected, never allowed to fail the batch.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_UNSTORABLE_REASON = "holds a NUL or a lone surrogate (\\ud800-\\udfff): not storable text"


def _strings(values: list, field: str, errors: list[RowError]) -> list:
    if set(map(type, values)) <= {str, type(None)} and not _UNSTORABLE.search(
        "".join(v for v in values if v)
    ):
        return [v or None for v in values] if "" in values else values
    out = []
    for i, v in enumerate(values):
        if v is not None and type(v) is str and _UNSTORABLE.search(v):
            errors.append(RowError(i, field, _short(v), _UNSTORABLE_REASON, "bad_text"))
            out.append(None)
        elif v is None or type(v) is str:
            out.append(v or None)
        else:
            # Meter numbers may start with 0, so a number here may already have lost digits.
            errors.append(
                RowError(
                    i, field, _short(v), f"must be a string, not {_json_type(v)}", "wrong_type"
                )
            )
            out.append(None)
    return out


# Integers beyond this are sent to polars as floats (it has no wider integer type); beyond a
# float's range they are not numbers a meter can send.
_BIG_INT = 2**63


def _numbers(values: list, field: str, errors: list[RowError]) -> list:
    types = set(map(type, values))
    if types <= {float, int, type(None)} and (
        int not in types or not any(type(v) is int and abs(v) >= _BIG_INT for v in values)
    ):
        return values
    out = []
    for i, v in enumerate(values):
        if type(v) is int and abs(v) >= _BIG_INT:
            try:
                out.append(float(v))
            except OverflowError:
                errors.append(RowError(i, field, _short(v), "not a finite number", "not_a_number"))
                out.append(None)
        elif v is None or type(v) is float or type(v) is int:
            out.append(v)
        else:
            errors.append(
                RowError(
                    i, field, _short(v), f"must be a number, not {_json_type(v)}", "not_a_number"
                )
            )
            out.append(None)
    return out


def _short(value):
    if type(value) is int and abs(value) >= _BIG_INT:
        digits = str(abs(value)) if abs(value).bit_length() < 4000 else "?"
        return f"{'-' if value < 0 else ''}{digits[:20]}... ({len(digits)} digits)"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, int | float | bool) and not isinstance(value, str):
        return value if not (isinstance(value, float) and not math.isfinite(value)) else str(value)
    # Shown back in JSON answers and kept in the quarantine: no lone surrogates, no NUL.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text if len(text) <= 80 else text[:77] + "..."


def parse_times(raw: pl.Series, time_zone: str) -> pl.Series:
    """ISO 8601 strings to UTC. A time with an offset (or Z) is exact; one without is local time
    in the deployment's zone (time_zone)."""
    s = raw.str.replace(r"^(\d{4}-\d\d-\d\d) ", "${1}T").str.replace(r"[zZ]$", "+00:00")
    out = s.str.to_datetime(_AWARE_FORMATS[0], time_unit="us", time_zone="UTC", strict=False)
    if out.null_count() == s.null_count():
        return out.alias("ts")  # the usual case: one format for the whole batch
    tries = [out] + [
        s.str.to_datetime(f, time_unit="us", time_zone="UTC", strict=False)
        for f in _AWARE_FORMATS[1:]
    ]
    naive = pl.select(
        pl.coalesce([s.str.to_datetime(f, time_unit="us", strict=False) for f in _NAIVE_FORMATS])
    ).to_series()
    local = to_utc(naive, time_zone)
    return pl.select(pl.coalesce(*tries, local)).to_series().alias("ts")


_LISTS = ("events.", "payments.", "balances.")


def row_list(field: str) -> str:
    """Which list of the batch an error's row is in: "" (readings), "events.", "payments." or
    "balances." (the prefix of its field)."""
    return next((p for p in _LISTS if field.startswith(p)), "")


def rejected_rows(errors: list[RowError]) -> int:
    """How many rows (each list apart) the errors reject: a row may have several."""
    return len({(row_list(e.field), e.row) for e in errors})


def errors_json(errors: list[RowError], limit: int = KEEP_ERRORS) -> list[dict]:
    order = {"": 0, "events.": 1, "payments.": 2, "balances.": 3}
    return [
        e.to_dict() for e in sorted(errors, key=lambda e: (order[row_list(e.field)], e.row))[:limit]
    ]
