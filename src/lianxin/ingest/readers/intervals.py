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
        col = chunk[flow]
        factor = src._factors.get(flow, 1.0)
        if col.dtype == pl.String:
            value, present = _register_values(col)
            extra = {"_raw": col, "value": value * factor}
        else:  # typed (Parquet, XLSX numbers): the text of a rejected value is made from it
            present = col.is_not_null()
            extra = {"value": col.cast(pl.Float64, strict=False) * factor}
        frame = chunk.select("_line", "meter").with_columns(ts=ts, **extra).filter(ok & present)
        parts.append((flow, frame))
    return _derive_batch(src, parts, rej, info=_info(chunk))


def _register_values(col: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Text registers -> (numbers, present). A value is read with blanks around it and commas
    (1,234.5) taken out; most values have neither, and a plain number is read as it stands
    (a text with a blank or a comma never reads as one), so only the rest are stripped.
    present: not empty and not blank."""
    value = col.cast(pl.Float64, strict=False)
    odd = value.is_null() & col.is_not_null()
    if not odd.any():
        return value, col.is_not_null()
    idx = odd.arg_true()
    text = col.gather(idx).str.strip_chars()
    value = value.scatter(idx, text.str.replace_all(",", "").cast(pl.Float64, strict=False))
    blank = pl.zeros(len(col), dtype=pl.Boolean, eager=True).scatter(idx, text == "")
    return value, col.is_not_null() & ~blank


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
    headers = pl.Series([h for h, _ in src._points], dtype=pl.String)
    offsets = pl.Series(
        [(k - 1) * 15 if src._start_labelled else k * 15 for _, k in src._points], dtype=pl.Int64
    )
    # Row by row, point by point (the order derive wants), made in polars: no Python object
    # per cell. unpivot stacks the point columns one after the other; one gather puts each
    # row's points together (a tenth of the time of a list column exploded).
    points = [f"_p{k}" for _, k in src._points]
    long = good.select(
        "_line",
        "meter",
        "_flow",
        *(pl.col(c).cast(pl.String).str.strip_chars() for c in points),
        _start=start,
    ).unpivot(on=points, index=["_line", "meter", "_flow", "_start"], value_name="_raw")
    by_row = np.arange(m, dtype=np.int64)[None, :] * n + np.arange(n, dtype=np.int64)[:, None]
    long = (
        long.drop("variable")[by_row.ravel()]
        .with_columns(_k=pl.Series(np.tile(np.arange(m, dtype=np.int64), n)))
        .filter(pl.col("_raw").is_not_null() & (pl.col("_raw").str.len_bytes() > 0))
    )
    long = long.select(
        "_raw",
        _field=headers.gather(long["_k"]),
        _line="_line",
        meter="meter",
        _flow="_flow",
        ts=pl.col("_start") + pl.duration(minutes=offsets.gather(long["_k"])),
        value=pl.col("_raw").str.replace_all(",", "").cast(pl.Float64, strict=False)
        * src._factors.get(FORWARD, 1.0),
    )
    parts = [(f, long.filter(pl.col("_flow") == f).drop("_flow")) for f in (FORWARD, REVERSE)]
    return _derive_batch(src, parts, rej, info=_info(good), now=now)


def _info(frame: pl.DataFrame) -> pl.DataFrame | None:
    cols = [c for c in _REGISTRATION if c in frame.columns]
    if not cols:
        # Nothing to register a meter with but its number, which the records hold too: no
        # per-meter table (a unique over the chunk's 1.2 M rows, for every chunk).
        return None
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
    meters = []
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
        raw = "_raw" in frame.columns
        frame = frame.with_columns(_f=pl.col("_field"), **({"_r": pl.col("_raw")} if raw else {}))
        checked, bad = _check_values(frame, now or datetime.now(UTC), interval=timedelta(0))
        rej.append(bad)
        checked = checked.rename({"_f": "_field", **({"_r": "_raw"} if raw else {})})
        regs, energy, bad2 = derive(src, flow, checked, meters)
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
    if len(meters) > 1:
        meters = [pl.concat(meters).unique()]
    return Batch(
        "interval_registers", out, _concat(rej), info=info, meters=meters[0] if meters else None
    )


def derive(
    src: Source, flow: str, regs: pl.DataFrame, meters: list | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Registers (meter, ts, value, _line, _field[, _raw]) of one flow -> (accepted registers,
    interval energy rows, rejections). Uses and updates the carried last point per meter.
    `meters`: a list the distinct meters of `regs` are appended to (those of the records, and
    of a meter whose every point here was refused).

    Vectorised over the chunk (meters as contiguous runs after sorting); only meters with a
    backwards step or a jump are walked point by point."""
    opts = src.options
    # The last accepted point of each meter (meter, _ct µs, _cv), a frame: joined, not looked up
    # meter by meter in Python (100,000 meters a chunk).
    carry = src._carry.get(flow)
    if carry is None:
        carry = _empty_carry()
    if not regs.height:
        return regs.select("meter", "ts", "value", "_line"), _empty_energy(), _rejection_frame([])
    # Exports come sorted by meter and time; sort only when this chunk is not. (The meters'
    # order is checked by is_sorted and the times as integers: one comparison of the meter
    # texts a row, not three.)
    first, t = _runs(regs)
    same, step = ~first[1:], np.diff(t)
    if not regs["meter"].is_sorted() or (same & (step < 0)).any():
        regs = regs.sort("meter", "ts", "_line")
        first, t = _runs(regs)
        same, step = ~first[1:], np.diff(t)
    if (same & (step == 0)).any():
        # Two rows for one meter and time: the later line wins, as a store write would.
        same_next = (pl.col("meter") == pl.col("meter").shift(-1)) & (
            pl.col("ts") == pl.col("ts").shift(-1)
        )
        regs = regs.sort("meter", "ts", "_line").filter(~same_next.fill_null(False))
        first, t = _runs(regs)
    n = regs.height
    starts = np.flatnonzero(first)
    firsts = regs.select("meter", _first="ts")[starts]
    if meters is not None:
        meters.append(firsts["meter"])
    v = regs["value"].to_numpy()
    # Each meter's predecessor: carried from an earlier chunk, else the store's last register.
    if opts.previous is not None:
        missing = firsts.join(carry, on="meter", how="anti")
        if missing.height:
            lo, hi = missing["_first"].min(), missing["_first"].max()
            prev = opts.previous(missing["meter"].to_list(), lo - timedelta(hours=2), hi)
            if prev is not None and prev.height:
                last = (
                    prev.filter(pl.col("unit") == REG_UNIT[flow])
                    .join(missing, on="meter")
                    .filter(pl.col("ts") < pl.col("_first"))
                    .sort("meter", "ts")
                    .group_by("meter", maintain_order=True)
                    .last()
                )
                carry = _merge_carry(
                    carry,
                    last.select(
                        "meter",
                        _ct=pl.col("ts").dt.epoch("us"),
                        _cv=pl.col("value").cast(pl.Float64),
                    ),
                )
    if opts.replacements and flow == FORWARD:
        carry = _across_replacements(src, regs, carry)
    prev_t = np.empty(n, dtype=np.int64)
    prev_v = np.empty(n)
    prev_t[1:], prev_v[1:] = t[:-1], v[:-1]
    has_prev = ~first
    pred = firsts.join(carry, on="meter", how="left", maintain_order="left")
    ct = pred["_ct"].fill_null(np.iinfo(np.int64).max).to_numpy()
    cv = pred["_cv"].fill_null(0.0).to_numpy()
    use = ct < t[starts]  # a carried point at or after this one is not its predecessor
    at = starts[use]
    prev_t[at], prev_v[at], has_prev[at] = ct[use], cv[use], True
    dt = np.where(has_prev, t - prev_t, 0)
    d = np.where(has_prev, v - prev_v, 0.0)
    lengths = np.diff(np.append(starts, n))
    # The meter's interval: given, or its shortest step (1 to 60 minutes).
    if opts.interval_given:
        step = np.full(n, opts.interval_minutes * _NS_MIN, dtype=np.int64)
    else:
        masked = np.where(has_prev & (dt > 0), dt, np.iinfo(np.int64).max)
        mins = np.minimum.reduceat(masked, starts)
        mins = np.where(mins == np.iinfo(np.int64).max, opts.interval_minutes * _NS_MIN, mins)
        step = np.repeat(np.clip(mins, _NS_MIN, 60 * _NS_MIN), lengths)
    lim = limit("kWh", timedelta(hours=1)) * (dt / 3.6e9)
    clean = has_prev & (d >= 0) & (d <= lim)
    accepted = np.ones(n, dtype=bool)
    energy = np.where(clean, d, np.nan)
    start = prev_t.copy()
    notes: list[tuple] = []
    trouble = has_prev & ~clean
    if trouble.any():
        groups = np.repeat(np.arange(len(starts)), lengths)
        for g in np.unique(groups[trouble]).tolist():
            lo, hi = int(starts[g]), int(starts[g]) + int(lengths[g])
            _walk(src, regs, lo, hi, t, v, has_prev, prev_t, prev_v, accepted, energy, start, notes)
    pair = accepted & ~np.isnan(energy)
    span = t - start
    exact = pair & (span == step)
    longer = pair & ~exact
    out = [_energy_rows(regs, np.flatnonzero(exact), start, energy, ENERGY_UNIT[flow])]
    if longer.any():
        divisible = longer & (span % step == 0)
        if opts.spread and divisible.any():
            idx = np.flatnonzero(divisible)
            cnt = (span[idx] // step[idx]).astype(np.int64)
            rep = np.repeat(idx, cnt)
            k = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            spread_start = start[rep] + k * step[rep]
            out.append(
                _energy_rows(
                    regs,
                    rep,
                    spread_start,
                    (energy[idx] / cnt)[np.repeat(np.arange(len(idx)), cnt)],
                    ENERGY_UNIT[flow],
                    direct=True,
                )
            )
            longer &= ~divisible
        out.append(_energy_rows(regs, np.flatnonzero(longer), start, energy, SPAN_UNIT[flow]))
    energy_rows = pl.concat(out)
    for kind, n_ in _count(notes).items():
        src.register_notes[kind] = src.register_notes.get(kind, 0) + n_
    rejections = _rejection_frame([r for r in notes if r[4] in ("register_down", "register_jump")])
    good = regs.select("meter", "ts", "value", "_line", unit=pl.lit(REG_UNIT[flow]))
    if not accepted.all():
        good = good.filter(pl.Series(accepted))
    # The last accepted point of each meter goes on to the next chunk.
    last_idx = np.maximum.reduceat(np.where(accepted, np.arange(n), -1), starts)
    last_idx = last_idx[last_idx >= 0]
    src._carry[flow] = _merge_carry(
        carry,
        pl.DataFrame(
            {"meter": regs["meter"].gather(last_idx), "_ct": t[last_idx], "_cv": v[last_idx]}
        ),
    )
    return good, energy_rows, rejections


def _runs(regs: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(each row's meter differs from the row before's, the times as µs)."""
    first = regs.select((pl.col("meter") != pl.col("meter").shift(1)).fill_null(True))
    return first.to_series().to_numpy(), regs["ts"].dt.epoch("us").to_numpy()


def _empty_carry() -> pl.DataFrame:
    return pl.DataFrame(schema={"meter": pl.String, "_ct": pl.Int64, "_cv": pl.Float64})


def _merge_carry(carry: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """The carried points with `new` (meter, _ct, _cv) replacing those of its meters."""
    if not new.height:
        return carry
    new = new.cast({"_ct": pl.Int64, "_cv": pl.Float64})
    if not carry.height:
        return new
    return pl.concat([carry.join(new, on="meter", how="anti"), new])


def _us(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _energy_rows(regs, idx, start, energy, unit, direct=False) -> pl.DataFrame:
    """Energy rows at `idx` of regs: meter and line from the later register, ts = the start of
    the interval (the earlier one). `direct`: start and energy are already per output row."""
    picked = regs.select("meter", "_line")[idx]
    ts = start if direct else start[idx]
    value = energy if direct else energy[idx]
    return picked.with_columns(
        ts=pl.Series(ts, dtype=pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        value=pl.Series(value, dtype=pl.Float64),
        unit=pl.lit(unit),
    ).select("meter", "ts", "value", "_line", "unit")


def _across_replacements(src: Source, regs: pl.DataFrame, carry: pl.DataFrame) -> pl.DataFrame:
    """A new meter's first point takes as predecessor the old meter's last register before the
    replacement, moved to the new meter's scale (value - old_final + new_initial): the interval
    across the change then gets the old meter's last part plus the new meter's first.
    -> the carried points with those predecessors."""
    opts = src.options
    firsts = (
        regs.filter(pl.col("meter").is_in(list(opts.replacements)))
        .group_by("meter")
        .agg(pl.col("ts").min())
    )
    # The few carried points of the meters concerned, as {meter: (ts, value)}.
    olds = {r[0] for m in firsts["meter"] for r in opts.replacements[m]}
    known = {
        m: (_EPOCH + timedelta(microseconds=ct), cv)
        for m, ct, cv in carry.filter(pl.col("meter").is_in([*olds, *firsts["meter"]]))
        .select("meter", "_ct", "_cv")
        .iter_rows()
    }
    moved = []
    for meter, first in firsts.iter_rows():
        records = [r for r in opts.replacements[meter] if r[1] <= first and r[0] != meter]
        if not records:
            continue
        old, at, old_final, new_initial = max(records, key=lambda r: r[1])
        if meter in known and known[meter][0] >= at:
            continue  # already past the change
        found = []
        mine = regs.filter((pl.col("meter") == old) & (pl.col("ts") <= at))
        if mine.height:
            found.append(mine.sort("ts").row(-1, named=True))
        if old in known and known[old][0] <= at:
            found.append({"ts": known[old][0], "value": known[old][1]})
        if not found and opts.previous is not None:
            prev = opts.previous([old], at - timedelta(hours=2), at + timedelta(microseconds=1))
            if prev is not None and prev.height:
                prev = prev.filter(pl.col("unit") == REG_UNIT[FORWARD]).sort("ts")
                if prev.height:
                    found.append(prev.row(-1, named=True))
        if found:
            last = max(found, key=lambda r: r["ts"])
            known[meter] = (last["ts"], last["value"] - old_final + new_initial)
            moved.append((meter, _us(last["ts"]), float(known[meter][1])))
            src.register_notes["replaced_record"] = src.register_notes.get("replaced_record", 0) + 1
    if not moved:
        return carry
    return _merge_carry(carry, pl.DataFrame(moved, schema=_empty_carry().schema, orient="row"))


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


def _walk(src, regs, lo, hi, t, v, has_prev, prev_t, prev_v, accepted, energy, start, notes):
    """One meter with a backwards step or a jump, point by point: a rejected point is skipped,
    so the next difference is taken from the last accepted point."""
    opts = src.options
    meter = regs["meter"][lo]
    lines = regs["_line"][lo:hi].to_list()
    fields = regs["_field"][lo:hi].to_list()
    raws = regs["_raw"][lo:hi].to_list() if "_raw" in regs.columns else [None] * (hi - lo)
    if has_prev[lo]:
        pt, pv = int(prev_t[lo]), float(prev_v[lo])
    else:
        pt = pv = None
    for i in range(lo, hi):
        j = i - lo
        raw = raws[j] if raws[j] is not None else _num(float(v[i]))
        energy[i] = np.nan
        if pv is None:
            pt, pv = int(t[i]), float(v[i])
            continue
        cv = float(v[i])
        minutes = (t[i] - pt) / _NS_MIN
        lim = limit("kWh", timedelta(minutes=minutes))
        d = cv - pv
        where = _when(pt, src)
        ok = False
        if d < 0:
            digits = opts.register_digits or max(1, len(str(int(math.floor(pv)))))
            wrapped = 10.0**digits - pv + cv
            record = _same_meter_record(opts, meter, pt, int(t[i]))
            if 0 <= wrapped <= lim and (opts.register_digits or pv >= 0.9 * 10.0**digits):
                energy[i], ok = wrapped, True
                notes.append((lines[j], fields[j], raw, "", "rollover"))
            elif record is not None and 0 <= (record[2] - pv) + (cv - record[3]) <= lim:
                energy[i], ok = (record[2] - pv) + (cv - record[3]), True
                notes.append((lines[j], fields[j], raw, "", "replaced_record"))
            elif opts.replaced_below is not None and cv <= opts.replaced_below:
                ok = True  # the interval across the replacement is a gap
                notes.append((lines[j], fields[j], raw, "", "replaced"))
            else:
                notes.append(
                    (
                        lines[j],
                        fields[j],
                        raw,
                        f"register went back from {_num(pv)} (at {where}) to {_num(cv)}: not a "
                        f"rollover of a {len(str(int(pv)))}-digit register; if the meter was "
                        "replaced import its 换表 record or give --replaced-below",
                        "register_down",
                    )
                )
        elif d > lim:
            notes.append(
                (
                    lines[j],
                    fields[j],
                    raw,
                    f"register jumped from {_num(pv)} (at {where}) to {_num(cv)}: "
                    f"{_num(d)} kWh in {minutes:g} min, above the plausible maximum of "
                    f"{_num(lim)} kWh",
                    "register_jump",
                )
            )
        else:
            energy[i], ok = d, True
        if ok:
            start[i] = pt
            pt, pv = int(t[i]), cv
        else:
            accepted[i] = False


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
