"""The meter-data contract every entry point shares. No Django, no I/O.

What a reading means is decided here and nowhere else: the meter kinds, the units a reading may
carry (what each measures, its factor to the kind's base unit, its plausibility limit), the event
vocabulary (as exports spell it, as the store keeps it, as the engine codes it), the deployment's
time zone and the one rule that turns a local time into UTC.

Entry points: the file readers (lianxin.ingest.readers), the push API and MQTT
(lianxin.ingest.api.rows), the readings store, the monitor (store -> engine), the engine's
`replay`/`prepare_readings` and `Engine.step`, and the household chart (lianxin.web.load).

Column names in the engine's input: `kwh` is electricity energy in kWh only for electricity
meters; a water or gas meter's quantity is in m³ (`base_unit(kind)`), so the engine reads the
column as "the interval's quantity in the kind's base unit". The monitor builds that column from
the store with `interval_factor`, and the chart reads electricity only, as kW (`to_kw`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from enum import IntEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from lianxin.errors import LianxinError

# ---- time ----------------------------------------------------------------------------------

# The deployment's zone when LIANXIN_TIME_ZONE is not set: the only place it is written.
DEFAULT_TIME_ZONE = "Asia/Shanghai"
UTC_US = pl.Datetime("us", "UTC")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # a reading before this is a wrong date
# A meter clock a few minutes ahead is skew; beyond that the date is wrong.
FUTURE_TOLERANCE = timedelta(minutes=15)


class ZoneError(LianxinError, ValueError):
    """LIANXIN_TIME_ZONE names no time zone."""


def deployment_zone() -> str:
    """The deployment's time zone (LIANXIN_TIME_ZONE, default Asia/Shanghai): naive timestamps
    in every input are local time here. Read here only; Django's TIME_ZONE is set from it."""
    name = os.environ.get("LIANXIN_TIME_ZONE") or DEFAULT_TIME_ZONE
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ZoneError(
            f"LIANXIN_TIME_ZONE={name!r} is not a time zone (e.g. Asia/Shanghai)"
        ) from exc
    return name


def to_utc(local: pl.Series, tz: str, ambiguous: str | pl.Series = "earliest") -> pl.Series:
    """Naive local times in `tz` -> UTC (microseconds). The one DST policy: a local time that
    does not exist (the hour skipped in spring) becomes null, which every caller rejects as a
    bad timestamp naming its row; a repeated one (the autumn hour) is the earlier instant, unless
    `ambiguous` says otherwise per row ("latest" where a caller knows it is the second time a
    meter shows it) or "raise" to learn that there are any."""
    local = local.cast(pl.Datetime("us"))
    offset = fixed_offset(local, tz)
    if offset is not None:  # the usual case (a zone without DST): plain arithmetic
        return (local - offset).dt.replace_time_zone("UTC")
    return (
        local.dt.replace_time_zone(tz, ambiguous=ambiguous, non_existent="null")
        .dt.convert_time_zone("UTC")
        .cast(UTC_US)
    )


def fixed_offset(s: pl.Series, tz: str) -> timedelta | None:
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


def epoch_seconds(ts: pl.Series, tz: str) -> pl.Series:
    """Whole seconds since the epoch (floored); naive values are local time in `tz`."""
    if ts.dtype == pl.Date:
        ts = ts.cast(pl.Datetime("us"))
    if isinstance(ts.dtype, pl.Datetime) and ts.dtype.time_zone is None:
        ts = to_utc(ts, tz)
    if isinstance(ts.dtype, pl.Datetime):
        per_s = {"ns": 10**9, "us": 10**6, "ms": 10**3}[ts.dtype.time_unit]
        return ts.to_physical() // per_s
    return ts.cast(pl.Int64)


# Meter and account numbers (表号, 户号): the care records' width.
METER_MAX_LEN = 32

# ---- meter kinds and units ------------------------------------------------------------------

ELECTRICITY, WATER, GAS = "electricity", "water", "gas"
METER_KINDS = (ELECTRICITY, WATER, GAS)  # order = the engine's kind code
# The base unit of each kind's interval quantity (what the engine learns from).
BASE_UNIT = {ELECTRICITY: "kWh", WATER: "m3", GAS: "m3"}
# A household supply is at most a few tens of kW; 100 kW sustained is a unit mix-up (Wh as kWh)
# or a meter fault, not a home. Water and gas: 10 m³ an hour is a burst main, not a tap.
MAX_KW = 100.0
MAX_M3_PER_H = 10.0
# The longest interval a reading may cover: a reading whose interval is not known (long files,
# the push API) is judged against this one.
LONGEST_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True)
class Unit:
    """One unit a reading may carry. `measure`: interval (a quantity used in the reading's
    interval), power, day (the local day's energy), register (a cumulative register), voltage,
    current. `factor` turns an interval quantity into its kind's base unit. `limit` is the largest
    plausible value: per hour of the interval for interval quantities, else per reading."""

    name: str
    kinds: frozenset[str]
    measure: str
    factor: float
    limit: float


_ELEC = frozenset({ELECTRICITY})
_FLOW = frozenset({WATER, GAS})
UNITS: dict[str, Unit] = {
    u.name: u
    for u in (
        Unit("kWh", _ELEC, "interval", 1.0, MAX_KW),
        Unit("Wh", _ELEC, "interval", 0.001, MAX_KW * 1000),
        Unit("kW", _ELEC, "power", 1.0, MAX_KW),
        Unit("kWh/d", _ELEC, "day", 1.0, MAX_KW * 24),
        Unit("kWh reg", _ELEC, "register", 1.0, 1e9),
        # Interval registers (示值): the reverse register, energy exported in an interval
        # (rooftop solar: never use), and a difference spanning missing points, stored at the
        # gap's start and ending at the meter's next register (not a fixed interval).
        Unit("kWh export reg", _ELEC, "register", 1.0, 1e9),
        Unit("kWh export", _ELEC, "export", 1.0, MAX_KW),
        Unit("kWh span", _ELEC, "span", 1.0, MAX_KW),
        Unit("kWh export span", _ELEC, "span", 1.0, MAX_KW),
        Unit("V", _ELEC, "voltage", 1.0, 1_000.0),
        Unit("A", _ELEC, "current", 1.0, 1_000.0),
        Unit("m3", _FLOW, "interval", 1.0, MAX_M3_PER_H),
        Unit("L", _FLOW, "interval", 0.001, MAX_M3_PER_H * 1000),
    )
}
# Spellings of units in exports and pushes -> the unit's name.
UNIT_SPELLINGS = {"kwh": "kWh", "wh": "Wh", "kw": "kW", "m3": "m3", "m³": "m3", "l": "L"}
UNIT_SPELLINGS.update({"v": "V", "a": "A"})


def unit_name(raw: str, default: str) -> str:
    """A unit as written -> its name in UNITS (unknown spellings are kept as written, to be
    refused by the caller with the value named); empty -> default."""
    text = raw.strip()
    return UNIT_SPELLINGS.get(text.lower(), text) if text else default


def limit(unit: str, interval: timedelta = LONGEST_INTERVAL) -> float:
    """The largest plausible value of one reading in `unit` covering `interval` (inf for a unit
    the contract does not know: the caller refuses those by name)."""
    u = UNITS.get(unit)
    if u is None:
        return float("inf")
    if u.measure == "interval":
        return u.limit * (interval / timedelta(hours=1))
    return u.limit


def interval_factor(unit: str) -> float | None:
    """Factor to the kind's base unit for units that measure an interval's quantity, else None
    (power, voltage, registers: not what the engine learns from)."""
    u = UNITS.get(unit)
    return u.factor if u is not None and u.measure == "interval" else None


def base_unit(kind: str) -> str:
    return BASE_UNIT[kind]


def interval_quantities(frame: pl.DataFrame) -> pl.DataFrame:
    """Store rows (meter, ts, value, unit) whose unit is an interval quantity, with `quantity`
    = value in the kind's base unit (kWh, m³). Rows in other units (kW, V, registers) are
    dropped: they are not what the engine judges."""
    factors = {name: u.factor for name, u in UNITS.items() if u.measure == "interval"}
    return frame.filter(pl.col("unit").is_in(list(factors))).with_columns(
        (pl.col("value") * pl.col("unit").replace_strict(factors, return_dtype=pl.Float64)).alias(
            QUANTITY
        )
    )


# The engine's input column of an interval's quantity, in its kind's base unit (BASE_UNIT: kWh
# for electricity, m³ for water and gas). `kwh` is accepted for frames of electricity alone.
QUANTITY = "quantity"


def quantity_column(frame: pl.DataFrame) -> str:
    """The column of `frame` that holds the interval quantities: `quantity`, or `kwh` when every
    row is an electricity meter's (a `kwh` column must not hold m³). ValueError otherwise."""
    if QUANTITY in frame.columns:
        return QUANTITY
    if "kwh" not in frame.columns:
        raise ValueError(
            f"readings: missing column 'quantity' (or 'kwh' for electricity); "
            f"have {', '.join(frame.columns)}"
        )
    if "meter_kind" in frame.columns and frame.height:
        # (a kind the contract does not know is refused by name where kinds are checked)
        other = frame.filter(pl.col("meter_kind").is_in([WATER, GAS]))
        if other.height:
            kind = other["meter_kind"][0]
            raise ValueError(
                f"readings: column 'kwh' holds kWh, but there are {kind} rows (m³): name the "
                "column 'quantity' (kWh for electricity, m³ for water and gas)"
            )
    return "kwh"


# ---- meter events -----------------------------------------------------------------------------

POWER_OFF, POWER_ON = "power_off", "power_on"
VOLTAGE_OUT_OF_RANGE, VOLTAGE_HIGH, VOLTAGE_LOW = (
    "voltage_out_of_range",
    "voltage_high",
    "voltage_low",
)
RELAY_OPEN, RELAY_CLOSE = "relay_open", "relay_close"
TAMPER, COMM_LOSS, COMM_RESTORED = "tamper", "comm_loss", "comm_restored"

# What the events store keeps (and the push API and MQTT accept).
STORED_EVENTS = (
    POWER_OFF,
    POWER_ON,
    VOLTAGE_OUT_OF_RANGE,
    RELAY_OPEN,
    RELAY_CLOSE,
    TAMPER,
    COMM_LOSS,
    COMM_RESTORED,
)


class EngineEvent(IntEnum):
    """The engine's event codes (int8 in its arrays). Detectors compare against these names,
    never against numbers; a voltage event is split by direction, comm_restored has no code."""

    POWER_OFF = 0
    POWER_ON = 1
    VOLTAGE_HIGH = 2
    VOLTAGE_LOW = 3
    RELAY_OPEN = 4
    RELAY_CLOSE = 5
    TAMPER = 6  # accepted and kept in the input, but DESIGN §5 has no finding for it yet
    COMM_LOSS = 7


ENGINE_EVENTS = tuple(e.name.lower() for e in EngineEvent)  # the names replay() accepts
ENGINE_EVENT_CODE = {e.name.lower(): e.value for e in EngineEvent}

# Meter events as exports spell them -> the stored event.
EVENT_SPELLINGS = {
    "停电": POWER_OFF,
    "掉电": POWER_OFF,
    "失电": POWER_OFF,
    "power_off": POWER_OFF,
    "last_gasp": POWER_OFF,
    "上电": POWER_ON,
    "复电": POWER_ON,
    "来电": POWER_ON,
    "power_on": POWER_ON,
    "电压越限": VOLTAGE_OUT_OF_RANGE,
    "过压": VOLTAGE_OUT_OF_RANGE,
    "欠压": VOLTAGE_OUT_OF_RANGE,
    "电压越上限": VOLTAGE_OUT_OF_RANGE,
    "电压越下限": VOLTAGE_OUT_OF_RANGE,
    "voltage_out_of_range": VOLTAGE_OUT_OF_RANGE,
    "跳闸": RELAY_OPEN,
    "拉闸": RELAY_OPEN,
    "费控跳闸": RELAY_OPEN,
    "relay_open": RELAY_OPEN,
    "合闸": RELAY_CLOSE,
    "relay_close": RELAY_CLOSE,
    "开盖": TAMPER,
    "开表盖": TAMPER,
    "窃电": TAMPER,
    "tamper": TAMPER,
    "通信中断": COMM_LOSS,
    "失联": COMM_LOSS,
    "通讯中断": COMM_LOSS,
    "comm_loss": COMM_LOSS,
    "通信恢复": COMM_RESTORED,
    "comm_restored": COMM_RESTORED,
}


def engine_event(event: pl.Expr, detail: pl.Expr) -> pl.Expr:
    """Stored events -> the engine's names. A voltage event says which way in its detail (e.g.
    "258V" or "high"); comm_restored carries no finding and becomes null (dropped)."""
    volts = detail.str.extract(r"(\d+(?:\.\d+)?)", 1).cast(pl.Float64, strict=False)
    high = detail.str.to_lowercase().str.contains("high|过高|高") | (volts > 220)
    return (
        pl.when(event == VOLTAGE_OUT_OF_RANGE)
        .then(pl.when(high).then(pl.lit(VOLTAGE_HIGH)).otherwise(pl.lit(VOLTAGE_LOW)))
        .when(event == COMM_RESTORED)
        .then(pl.lit(None, pl.String))
        .otherwise(event)
    )


def engine_events(stored: pl.DataFrame, meters: pl.DataFrame) -> pl.DataFrame:
    """Stored meter events (meter, ts, event, detail) of registered meters (`meters`: meter,
    household_id) as the engine's (household_id, ts, event); events with no engine name
    (comm_restored) are left out."""
    ev = stored.join(meters.select("meter", "household_id"), on="meter", how="inner")
    ev = ev.with_columns(event=engine_event(pl.col("event"), pl.col("detail")))
    return ev.drop_nulls("event").select("household_id", "ts", "event")


def accounts_of(meters: pl.DataFrame) -> pl.DataFrame:
    """account (户号) -> household_id from a registry of meters; an account's payments go to its
    first meter's home."""
    if "account" not in meters.columns:
        return pl.DataFrame(schema={"account": pl.String, "household_id": pl.String})
    return meters.select("account", "household_id").drop_nulls().unique("account", keep="first")


def engine_payments(
    payments: pl.DataFrame, balances: pl.DataFrame, meters: pl.DataFrame, accounts: pl.DataFrame
) -> pl.DataFrame | None:
    """Stored payments (by account) and prepaid balances (by meter) as the engine's
    (household_id, ts, amount, balance) rows in time order, or None if there are none."""
    parts = []
    if payments.height and accounts.height:
        parts.append(
            payments.join(accounts, on="account", how="inner").select(
                "household_id", "ts", "amount", balance=pl.lit(None, pl.Float64)
            )
        )
    if balances.height and meters.height:
        parts.append(
            balances.join(meters.select("meter", "household_id"), on="meter", how="inner").select(
                "household_id", "ts", amount=pl.lit(None, pl.Float64), balance="balance"
            )
        )
    parts = [p for p in parts if p.height]
    return pl.concat(parts).sort("ts") if parts else None


# ---- row checks ---------------------------------------------------------------------------------


def value_checks(
    value: pl.Expr,
    ts: pl.Expr,
    limit_expr: pl.Expr,
    now: datetime,
    end: pl.Expr | None = None,
    every_field: bool = False,
) -> dict[str, pl.Expr]:
    """The row checks every entry point applies to a reading, in the order they are reported:
    code -> mask. A value fails one value check at most, a time one time check at most. By
    default a row refused for its value is not checked for its time (files report one reason
    per reading); `every_field` checks the time of every row too (the push API reports every
    failing field of a row). CHECK_FIELD names the field each code is about."""
    end = ts if end is None else end
    bad_num = value.is_null() | value.is_nan() | value.is_infinite()
    neg = (value < 0) & ~bad_num
    absurd = (value > limit_expr) & ~bad_num & ~neg
    value_ok = pl.lit(True) if every_field else ~bad_num & ~neg & ~absurd
    future = (end > (now + FUTURE_TOLERANCE)) & value_ok
    early = (ts < EARLIEST) & value_ok & ~(end > (now + FUTURE_TOLERANCE)).fill_null(False)
    return {
        "not_a_number": bad_num.fill_null(True),
        "negative": neg.fill_null(False),
        "absurd": absurd.fill_null(False),
        "future": future.fill_null(False),
        "absurd_date": early.fill_null(False),
    }


# The field of a reading each of value_checks' codes is about.
CHECK_FIELD = {
    "not_a_number": "value",
    "negative": "value",
    "absurd": "value",
    "future": "ts",
    "absurd_date": "ts",
}


def check_engine_quantities(values, keys=None) -> None:
    """Engine input: each interval quantity a finite number >= 0 (raises ValueError naming the
    first row, and its household when `keys` gives them, otherwise). numpy arrays: this is the
    engine's hot path (the live step and replay's input both)."""
    import numpy as np

    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        i = int(np.argmax(bad))
        who = f" for household {keys[i]}" if keys is not None else ""
        raise ValueError(
            f"readings row {i + 1}: kwh {float(values[i])!r}{who} is not a non-negative number"
        )
