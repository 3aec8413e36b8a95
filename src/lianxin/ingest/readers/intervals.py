"""Interval register readings (示值): the meter's cumulative forward (and reverse) active energy
register at each point, long (one row per meter and time) or wide (one row per meter and day,
96 points), at any interval of 1 to 60 minutes. No Django.

The energy of an interval is the difference of two consecutive registers of one meter, attributed
to the interval between them (stored at its start, unit kWh):
- the interval is inferred per meter (the shortest step between its points) or given
  (`Options.interval_minutes` with `Options.interval_given`);
- a missing point leaves a gap: no energy is invented. The difference spanning the gap is kept as
  one longer interval (unit `kWh span`, at the gap's start; the engine does not learn from it)
  unless `Options.spread` asks to spread it evenly over the missing intervals;
- the reverse register (反向有功, export, e.g. rooftop solar) gives `kWh export`, never use;
- a register that goes backwards is a rollover when it wrapped at its digit limit (the width of
  the previous value's integer part, or `Options.register_digits`), a replaced meter when
  `Options.replaced_below` says so (the new register starts at or below it: the interval across
  the replacement is a gap), and otherwise rejected, naming the row, the field, both values and
  the reason; a jump above the meter kind's limit for the interval likewise (meterdata.limit);
- a rejected point is skipped: the next difference is taken from the last accepted one.

Points arrive in chunks; the last accepted point of each meter is carried to the next chunk, and
the first chunk's points take their predecessor from the store through `Options.previous` (so a
daily drop's first interval, 00:00, is yesterday's last point to today's first).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from lianxin.ingest.readers.common import (
    _REGISTRATION,
    Batch,
    _check_values,
    _concat,
    _local_to_utc,
    _parse_date,
    _reject,
    _rejection_frame,
    _required,
)
from lianxin.meterdata import EARLIEST, limit

if TYPE_CHECKING:
    from lianxin.ingest.readers.source import Source

FORWARD, REVERSE = "register", "register_reverse"
REG_UNIT = {FORWARD: "kWh reg", REVERSE: "kWh export reg"}
ENERGY_UNIT = {FORWARD: "kWh", REVERSE: "kWh export"}
SPAN_UNIT = {FORWARD: "kWh span", REVERSE: "kWh export span"}
# What each output row is counted as in the import summary.
SET_NAME = {
    "kWh reg": "registers",
    "kWh export reg": "export registers",
    "kWh": "interval energy",
    "kWh export": "export energy",
    "kWh span": "gap-spanning energy",
    "kWh export span": "gap-spanning export",
}
_NS_MIN = 60_000_000  # microseconds in a minute (timestamps are µs)


def read_long(src: Source, chunk: pl.DataFrame, ts: pl.Series, ok: pl.Series, rej: list) -> Batch:
    """A chunk of long rows whose times (`ts`, UTC) are already parsed and checked."""
    flows = [f for f in (FORWARD, REVERSE) if f in chunk.columns]
    parts = []
    for flow in flows:
        raw = chunk[flow].cast(pl.String)
        present = raw.is_not_null() & (raw.str.strip_chars() != "")
        frame = (
            chunk.select("_line", "meter")
            .with_columns(
                ts=ts,
                _raw=raw,
                value=raw.str.strip_chars().str.replace_all(",", "").cast(pl.Float64, strict=False)
                * src._factors.get(flow, 1.0),
            )
            .filter(ok & present)
        )
        parts.append((flow, frame))
    return _derive_batch(src, parts, rej, info=_info(chunk))


def read_wide(src: Source, chunk: pl.DataFrame, now: datetime) -> Batch:
    """A chunk of 96-point register curves: point labels are the instants of the registers
    (`0:00 … 23:45`, or `0:15 … 24:00` where 24:00 is the next midnight)."""
    rej = []
    ok = _required(chunk, "meter", rej)
    day, bad_day = _parse_date(chunk["date"])
    rej.append(
        _reject(
            chunk, bad_day & ok, "date", "date", "bad_date", "not a date (expected like 2024-03-01)"
        )
    )
    ok &= ~bad_day
    early = (day < EARLIEST.date()).fill_null(False)
    rej.append(_reject(chunk, early & ok, "date", "date", "absurd_date", "date before 2000"))
    ok &= ~early
    flow = _row_flows(src, chunk, rej, ok)
    ok &= flow.is_not_null()
    good = chunk.with_columns(_day=day, _flow=flow).filter(ok)
    start = _local_to_utc(good["_day"].cast(pl.Datetime("us")), src.options.time_zone)
    n, m = good.height, len(src._points)
    headers = [h for h, _ in src._points]
    offsets = np.array(
        [(k - 1) * 15 if src._start_labelled else k * 15 for _, k in src._points], dtype=np.int64
    )
    raws, present = [], []
    for _, k in src._points:
        col = good[f"_p{k}"].cast(pl.String).str.strip_chars()
        raws.append(col.to_numpy())
        present.append((col.is_not_null() & (col.str.len_bytes() > 0)).to_numpy())
    keep = np.column_stack(present).ravel() if n else np.zeros(0, dtype=bool)
    rows = np.repeat(np.arange(n, dtype=np.int64), m)[keep]
    ks = np.tile(np.arange(m, dtype=np.int64), n)[keep]
    raw = np.column_stack(raws).ravel()[keep] if n else np.zeros(0, dtype=object)
    long = pl.DataFrame(
        {
            "_row": rows,
            "_raw": pl.Series(raw, dtype=pl.String),
            "_field": pl.Series(np.array(headers, dtype=object)[ks] if n else [], dtype=pl.String),
            "_off": offsets[ks] if n else np.zeros(0, dtype=np.int64),
        }
    )
    long = long.with_columns(good.select("_line", "meter", "_flow")[long["_row"]].get_columns())
    long = long.with_columns(
        ts=start[long["_row"]] + pl.duration(minutes=long["_off"]),
        value=pl.col("_raw").str.replace_all(",", "").cast(pl.Float64, strict=False)
        * src._factors.get(FORWARD, 1.0),
    ).drop("_row", "_off")
    parts = [(f, long.filter(pl.col("_flow") == f).drop("_flow")) for f in (FORWARD, REVERSE)]
    return _derive_batch(src, parts, rej, info=_info(good), now=now)


def _info(frame: pl.DataFrame) -> pl.DataFrame:
    cols = [c for c in _REGISTRATION if c in frame.columns]
    return frame.select("meter", *cols).unique("meter", keep="last")


def _row_flows(src: Source, chunk: pl.DataFrame, rej: list, ok: pl.Series) -> pl.Series:
    """Forward or reverse per row of a wide file: its 数据类型 column (反向 = reverse; 无功 =
    reactive, skipped and counted) or forward."""
    if "unit" not in chunk.columns:
        return pl.Series([FORWARD] * chunk.height, dtype=pl.String)
    kind = chunk["unit"].cast(pl.String).fill_null("")
    reactive = kind.str.contains("无功|kvarh|(?i)reactive")
    flow = pl.select(
        pl.when(reactive)
        .then(None)
        .when(kind.str.contains("反向|(?i)reverse|export"))
        .then(pl.lit(REVERSE))
        .otherwise(pl.lit(FORWARD))
    ).to_series()
    src.skipped_rows["reactive"] = src.skipped_rows.get("reactive", 0) + int((reactive & ok).sum())
    return flow


def _derive_batch(src: Source, parts, rej: list, info=None, now=None) -> Batch:
    now = now or src.options.now
    records = []
    for flow, frame in parts:
        if not frame.height:
            continue
        frame = (
            frame.with_columns(
                unit=pl.lit(REG_UNIT[flow]), _field=pl.lit(src._columns.get(flow, flow))
            )
            if "_field" not in frame.columns
            else frame.with_columns(unit=pl.lit(REG_UNIT[flow]))
        )
        # (the value checks drop _field and _raw; derive names them in its own rejections)
        frame = frame.with_columns(_f=pl.col("_field"), _r=pl.col("_raw"))
        checked, bad = _check_values(frame, now or datetime.now(UTC), interval=timedelta(0))
        rej.append(bad)
        checked = checked.rename({"_f": "_field", "_r": "_raw"})
        regs, energy, bad2 = derive(src, flow, checked)
        rej.append(bad2)
        records.append(regs)
        records.append(energy)
    records = [r for r in records if r.height]
    out = (
        pl.concat(records, how="diagonal_relaxed")
        if records
        else pl.DataFrame(
            schema={
                "meter": pl.String,
                "ts": pl.Datetime("us", "UTC"),
                "value": pl.Float64,
                "unit": pl.String,
                "_line": pl.Int64,
            }
        )
    )
    return Batch("interval_registers", out, _concat(rej), info=info)


def derive(
    src: Source, flow: str, regs: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Registers (meter, ts, value, _line, _field, _raw) of one flow -> (accepted registers,
    interval energy rows, rejections). Uses and updates the carried last point per meter."""
    opts = src.options
    carry = src._carry.setdefault(flow, {})
    regs = regs.select("meter", "ts", "value", "_line", "_field", "_raw").sort(
        "meter", "ts", "_line"
    )
    # Two rows for one meter and time: the later line wins, as a store write would.
    regs = regs.unique(["meter", "ts"], keep="last", maintain_order=True)
    meters = regs["meter"].unique().to_list()
    missing = [m for m in meters if m not in carry]
    if missing and opts.previous is not None and regs.height:
        first = regs["ts"].min()
        prev = opts.previous(missing, first - timedelta(hours=2), first)
        if prev is not None and prev.height:
            prev = prev.filter(pl.col("unit") == REG_UNIT[flow]).sort("ts")
            for m, t, v in (
                prev.group_by("meter", maintain_order=True)
                .last()
                .select("meter", "ts", "value")
                .iter_rows()
            ):
                carry[m] = (t, v)
    if opts.replacements and flow == FORWARD:
        _across_replacements(src, regs, carry)
    if carry:
        known = {m: carry[m] for m in meters if m in carry}
        if known:
            head = pl.DataFrame(
                {
                    "meter": list(known),
                    "ts": [t for t, _ in known.values()],
                    "value": [v for _, v in known.values()],
                },
                schema={"meter": pl.String, "ts": regs["ts"].dtype, "value": pl.Float64},
            ).with_columns(
                _line=pl.lit(None, pl.Int64),
                _field=pl.lit(None, pl.String),
                _raw=pl.lit(None, pl.String),
            )
            # A carried point at or after a chunk's point is not its predecessor (rows out of
            # order across chunks): those points take no predecessor from the carry.
            regs = pl.concat([head, regs]).sort("meter", "ts", nulls_last=False)
    m_arr = regs["meter"].to_numpy()
    t = regs["ts"].dt.epoch("us").to_numpy()
    v = regs["value"].to_numpy()
    carried = regs["_line"].is_null().to_numpy()
    n = len(v)
    same = np.zeros(n, dtype=bool)
    if n > 1:
        same[1:] = m_arr[1:] == m_arr[:-1]
    dt = np.zeros(n, dtype=np.int64)
    dt[1:] = t[1:] - t[:-1]
    d = np.zeros(n)
    d[1:] = v[1:] - v[:-1]
    # The meter's interval: given, or its shortest step.
    if opts.interval_given:
        step = np.full(n, opts.interval_minutes * _NS_MIN, dtype=np.int64)
    else:
        steps = (
            pl.DataFrame({"m": m_arr, "dt": np.where(same, dt, 0)})
            .with_columns(s=pl.col("dt").filter(pl.col("dt") > 0).min().over("m"))["s"]
            .fill_null(opts.interval_minutes * _NS_MIN)
        )
        step = np.minimum(steps.to_numpy().astype(np.int64), 60 * _NS_MIN)
        step = np.maximum(step, _NS_MIN)
    hours = dt / 3.6e9
    lim = limit("kWh", timedelta(hours=1)) * hours
    clean = same & (d >= 0) & (d <= lim)
    trouble_rows = same & ~clean
    prev_idx = np.arange(n) - 1
    accepted = np.ones(n, dtype=bool)
    energy = np.where(clean, d, np.nan)
    notes: list[tuple] = []
    if trouble_rows.any():
        bad_meters = set(m_arr[trouble_rows].tolist())
        idx = np.flatnonzero(np.isin(m_arr, list(bad_meters)))
        _walk(src, flow, idx, m_arr, t, v, carried, regs, accepted, energy, prev_idx, notes)
    has_pair = same & accepted & ~np.isnan(energy)
    if not has_pair.any():
        energy_rows = _empty_energy()
    else:
        pi = prev_idx[has_pair]
        e = energy[has_pair]
        start = t[pi]
        span = t[has_pair] - start
        stp = step[has_pair]
        exact = span == stp
        lines = regs["_line"].to_numpy()[has_pair]
        mm = m_arr[has_pair]
        out = [
            pl.DataFrame(
                {"meter": mm[exact], "ts": start[exact], "value": e[exact], "_line": lines[exact]},
                schema_overrides={"_line": pl.Int64},
            ).with_columns(unit=pl.lit(ENERGY_UNIT[flow]))
        ]
        longer = ~exact
        if longer.any():
            divisible = (span % stp == 0) & longer
            if opts.spread and divisible.any():
                cnt = (span[divisible] // stp[divisible]).astype(np.int64)
                rep = np.repeat(np.arange(int(divisible.sum())), cnt)
                k = (
                    np.concatenate([np.arange(c) for c in cnt])
                    if len(cnt)
                    else np.zeros(0, np.int64)
                )
                out.append(
                    pl.DataFrame(
                        {
                            "meter": mm[divisible][rep],
                            "ts": start[divisible][rep] + k * stp[divisible][rep],
                            "value": (e[divisible] / cnt)[rep],
                            "_line": lines[divisible][rep],
                        },
                        schema_overrides={"_line": pl.Int64},
                    ).with_columns(unit=pl.lit(ENERGY_UNIT[flow]))
                )
                longer &= ~divisible
            out.append(
                pl.DataFrame(
                    {
                        "meter": mm[longer],
                        "ts": start[longer],
                        "value": e[longer],
                        "_line": lines[longer],
                    },
                    schema_overrides={"_line": pl.Int64},
                ).with_columns(unit=pl.lit(SPAN_UNIT[flow]))
            )
        energy_rows = pl.concat([o for o in out if o.height] or [out[0]]).with_columns(
            ts=pl.from_epoch(pl.col("ts"), time_unit="us").dt.replace_time_zone("UTC")
        )
    for kind, n_ in _count(notes).items():
        src.register_notes[kind] = src.register_notes.get(kind, 0) + n_
    rejections = _rejection_frame([r for r in notes if r[4] in ("register_down", "register_jump")])
    keep = accepted & ~carried
    good = regs.filter(pl.Series(keep)).select(
        "meter", "ts", "value", "_line", unit=pl.lit(REG_UNIT[flow])
    )
    # The last accepted point of each meter goes on to the next chunk.
    last = (
        regs.filter(pl.Series(accepted))
        .group_by("meter")
        .agg(pl.col("ts").last(), pl.col("value").last())
    )
    for m, ts_, val in last.iter_rows():
        carry[m] = (ts_, val)
    return good, energy_rows, rejections


def _across_replacements(src: Source, regs: pl.DataFrame, carry: dict) -> None:
    """A new meter's first point takes as predecessor the old meter's last register before the
    replacement, moved to the new meter's scale (value - old_final + new_initial): the interval
    across the change then gets the old meter's last part plus the new meter's first."""
    opts = src.options
    firsts = (
        regs.filter(pl.col("meter").is_in(list(opts.replacements)))
        .group_by("meter")
        .agg(pl.col("ts").min())
    )
    for meter, first in firsts.iter_rows():
        records = [r for r in opts.replacements[meter] if r[1] <= first and r[0] != meter]
        if not records:
            continue
        old, at, old_final, new_initial = max(records, key=lambda r: r[1])
        if meter in carry and carry[meter][0] >= at:
            continue  # already past the change
        found = []
        mine = regs.filter((pl.col("meter") == old) & (pl.col("ts") <= at))
        if mine.height:
            found.append(mine.sort("ts").row(-1, named=True))
        if old in carry and carry[old][0] <= at:
            found.append({"ts": carry[old][0], "value": carry[old][1]})
        if not found and opts.previous is not None:
            prev = opts.previous([old], at - timedelta(hours=2), at + timedelta(microseconds=1))
            if prev is not None and prev.height:
                prev = prev.filter(pl.col("unit") == REG_UNIT[FORWARD]).sort("ts")
                if prev.height:
                    found.append(prev.row(-1, named=True))
        if found:
            last = max(found, key=lambda r: r["ts"])
            carry[meter] = (last["ts"], last["value"] - old_final + new_initial)
            src.register_notes["replaced_record"] = src.register_notes.get("replaced_record", 0) + 1


def _count(notes: list[tuple]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in notes:
        if r[4] in ("rollover", "replaced", "replaced_record"):
            out[r[4]] = out.get(r[4], 0) + 1
    return out


def _empty_energy() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "meter": pl.String,
            "ts": pl.Datetime("us", "UTC"),
            "value": pl.Float64,
            "_line": pl.Int64,
            "unit": pl.String,
        }
    )


def _walk(src, flow, idx, m_arr, t, v, carried, regs, accepted, energy, prev_idx, notes) -> None:
    """The meters with a backwards step or a jump, point by point: a rejected point is skipped,
    so the next difference is taken from the last accepted point."""
    opts = src.options
    lines = regs["_line"].to_list()
    fields = regs["_field"].to_list()
    raws = regs["_raw"].to_list()
    last = None
    for i in idx.tolist():
        if last is None or m_arr[last] != m_arr[i]:
            last = i
            energy[i] = np.nan
            continue
        prev_idx[i] = last
        pv, cv = v[last], v[i]
        minutes = (t[i] - t[last]) / _NS_MIN
        lim = limit("kWh", timedelta(minutes=minutes))
        d = cv - pv
        where = _when(t[last], src)
        if d < 0:
            digits = opts.register_digits or max(1, len(str(int(math.floor(pv)))))
            wrapped = 10.0**digits - pv + cv
            if 0 <= wrapped <= lim and (opts.register_digits or pv >= 0.9 * 10.0**digits):
                energy[i] = wrapped
                notes.append((lines[i], fields[i], raws[i], "", "rollover"))
                last = i
                continue
            record = _same_meter_record(opts, m_arr[i], t[last], t[i])
            if record is not None:
                across = (record[2] - pv) + (cv - record[3])
                if 0 <= across <= lim:
                    energy[i] = across
                    notes.append((lines[i], fields[i], raws[i], "", "replaced_record"))
                    last = i
                    continue
            if opts.replaced_below is not None and cv <= opts.replaced_below:
                energy[i] = np.nan  # the interval across the replacement is a gap
                notes.append((lines[i], fields[i], raws[i], "", "replaced"))
                last = i
                continue
            accepted[i] = False
            energy[i] = np.nan
            notes.append(
                (
                    lines[i],
                    fields[i],
                    raws[i],
                    f"register went back from {_num(pv)} (at {where}) to {_num(cv)}: not a "
                    f"rollover of a {len(str(int(pv)))}-digit register; if the meter was replaced "
                    "import its 换表 record or give --replaced-below",
                    "register_down",
                )
            )
        elif d > lim:
            accepted[i] = False
            energy[i] = np.nan
            notes.append(
                (
                    lines[i],
                    fields[i],
                    raws[i],
                    f"register jumped from {_num(pv)} (at {where}) to {_num(cv)}: "
                    f"{_num(d)} kWh in {minutes:g} min, above the plausible maximum of "
                    f"{_num(lim)} kWh",
                    "register_jump",
                )
            )
        else:
            energy[i] = d
            last = i


def _same_meter_record(opts, meter, after_us: int, until_us: int):
    """A 换表 record that kept the meter's number, dated between two of its points."""
    for record in (opts.replacements or {}).get(meter, ()):
        at = int(record[1].timestamp() * 1e6)
        if record[0] == meter and after_us < at <= until_us:
            return record
    return None


def _when(us: int, src) -> str:
    t = datetime.fromtimestamp(us / 1e6, UTC).astimezone(ZoneInfo(src.options.time_zone))
    return t.strftime("%Y-%m-%d %H:%M")


def _num(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".")
