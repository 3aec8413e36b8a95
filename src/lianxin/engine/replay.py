"""Causal replay: feed recorded data through the engine interval by interval, in time order.

It runs the same `Engine.tick` the live monitor runs. Readings are laid out on a grid of ticks
(the greatest common divisor of the homes' intervals) in chunks, so the work per tick is a few
vectorised operations over all homes; a finding's detected_at is the tick at which it was raised,
and nothing after that tick was used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import reduce

import numpy as np
import polars as pl

from lianxin.engine.config import EngineConfig
from lianxin.engine.core import EV, EVENTS, METER_KINDS, Engine
from lianxin.engine.findings import Finding
from lianxin.errors import LianxinError

CHUNK_TICKS = 2048
DENSE_CELLS = 1 << 25  # ticks x rows of one chunk's grid of readings (float32: 128 MiB)
ALLOWED_INTERVALS_S = range(60, 3601)


class InputError(LianxinError, ValueError):
    """Input a person must fix; the message names the table, field and value."""


def replay(
    readings: pl.DataFrame,
    *,
    topology: pl.DataFrame | None = None,
    events: pl.DataFrame | None = None,
    payments: pl.DataFrame | None = None,
    settings: pl.DataFrame | None = None,
    tz: str = "Asia/Shanghai",
    config: EngineConfig | None = None,
    engine: Engine | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Finding]:
    """Findings (raised and resolved, in detection order) of a causal replay of `readings`.

    readings: household_id (str), ts (start of the interval; naive = local time in `tz`, or
    timezone-aware), kwh (energy in the interval); optional meter_kind (electricity/water/gas).
    A missing row is no data. Pass `engine` to continue from a restored state (its config wins).
    `progress(ticks done, ticks)` is called after each chunk (the engine knows no terminal).
    """
    eng = engine or Engine(config or EngineConfig(tz=tz))
    tz = eng.cfg.tz
    r, homes = prepare_readings(readings, tz)
    if topology is not None:
        topo = _topology(topology)
        homes = homes.join(topo, on="household_id", how="left", maintain_order="left")
    eng.register(homes)
    if settings is not None and settings.height:
        eng.apply_settings(settings)
    row_of = np.zeros(int(homes["meter"].max()) + 1, np.intp)
    row_of[homes["meter"].to_numpy()] = [
        eng.index[h if k == "electricity" else f"{h}#{k}"]
        for h, k in zip(homes["household_id"], homes["meter_kind"], strict=True)
    ]
    # Each meter's readings are one run of rows, in time order: work meter by meter, on views
    # of the input, so that no array as long as the input is made (fresh memory for a few of
    # those costs more than laying the readings out). A Python step per meter and chunk, some
    # 10 us: right for the thousands of homes a replay holds in memory, not for millions.
    m = r["meter"].to_numpy()
    start, kwh = r["start"].to_numpy(), r["kwh"].to_numpy()
    heads = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])
    bounds = np.append(heads, len(m))
    meter_rows = row_of[m[heads]]
    meter_iv = eng.a["interval_s"][meter_rows].astype(np.int64)
    first_ends = start[heads] + meter_iv
    ev = _events(eng, events, tz)
    pay = _payments(eng, payments, tz)
    first_end = int(first_ends.min())
    # Ticks fall where readings end: a grid as fine as the intervals and the homes' offsets
    # from each other (one meter ending on :00/:30, another on :15/:45 -> every 15 minutes).
    tick_s = int(reduce(math.gcd, eng.a["interval_s"].astype(int).tolist()))
    # A meter's readings lie on the grid of its inferred interval (prepare_readings checks it),
    # and that interval is one of its steps if it has two readings or more: so its offsets are
    # those of its first reading plus multiples of that interval.
    inferred = np.zeros(len(row_of), np.int64)
    inferred[homes["meter"].to_numpy()] = homes["interval_s"].to_numpy()
    steps = np.diff(bounds) > 1
    offsets = np.r_[tick_s, (first_ends - first_end) % tick_s, inferred[m[heads[steps]]]]
    tick_s = int(np.gcd.reduce(offsets))
    first = first_end if eng.now is None else eng.now + tick_s
    last = max(
        int((start[bounds[1:] - 1] + meter_iv).max()),
        int(ev[2].max()) if len(ev[2]) else 0,
        int(pay[3].max()) if len(pay[3]) else 0,
    )
    # Align the grid so that every reading's end lies on a tick.
    first -= (first - first_end) % tick_s
    # Ticks per chunk: CHUNK_TICKS, or more while the chunk's grid stays within DENSE_CELLS.
    chunk = max(CHUNK_TICKS, DENSE_CELLS // max(eng.n, 1))
    meters = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), meter_rows.tolist(),
                      meter_iv.tolist(), strict=True))  # fmt: skip
    out: list[Finding] = []
    prev = eng.now
    for c0 in range(first, last + 1, chunk * tick_s):
        c1 = min(c0 + chunk * tick_s, last + tick_s)
        nt = (c1 - c0) // tick_s
        # The chunk's grid: each meter's readings that end in [c0, c1) (the first chunk starts
        # after the engine's clock: a restored engine has judged the readings before it).
        dense = np.full((nt, eng.n), np.nan, np.float32)
        for h0, h1, row, iv in meters:
            starts = start[h0:h1]
            lo, hi = np.searchsorted(starts, (c0 - iv, c1 - iv))
            if lo < hi:
                at = (starts[lo:hi] + (iv - c0)) // tick_s
                dense[at, row] = kwh[h0 + lo : h0 + hi] * 3600.0 / iv
        present = ~np.isnan(dense)
        for i in range(nt):
            now = c0 + i * tick_s
            out += eng.tick(
                now, present[i], dense[i], _window(ev, prev, now), _window(pay, prev, now)
            )
            prev = now
        if progress is not None:
            progress((c1 - first) // tick_s, (last + tick_s - first) // tick_s)
    return out


def prepare_readings(readings: pl.DataFrame, tz: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validated readings (meter code, epoch-second `start`, kwh; each meter's together, in
    time order) and the meters (code, household_id, meter_kind, interval_s inferred as the
    commonest step)."""
    for col in ("household_id", "ts", "kwh"):
        if col not in readings.columns:
            raise InputError(
                f"readings: missing column {col!r} (have {', '.join(readings.columns)})"
            )
    if readings.height == 0:
        raise InputError("readings: there are no rows to replay")
    df = readings.select(
        pl.col("household_id").cast(pl.Utf8),
        pl.col("ts"),
        pl.col("kwh"),
        (pl.col("meter_kind") if "meter_kind" in readings.columns else pl.lit("electricity"))
        .cast(pl.Utf8)
        .fill_null("electricity")
        .alias("meter_kind"),
    ).with_row_index("line", offset=1)
    if not df["kwh"].dtype.is_numeric():
        num = df["kwh"].cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False)
        bad = df.filter(num.is_null() & df["kwh"].is_not_null())
        if bad.height:
            b = bad.row(0, named=True)
            raise InputError(
                f"readings row {b['line']}: kwh {b['kwh']!r} for household {b['household_id']} "
                "is not a number"
            )
        df = df.with_columns(kwh=num)
    df = df.with_columns(pl.col("kwh").cast(pl.Float64))
    _no_nulls(df, "readings", ("household_id", "ts", "kwh"))
    bad = df.filter(pl.col("kwh").is_nan() | (pl.col("kwh") < 0))
    if bad.height:
        b = bad.row(0, named=True)
        raise InputError(
            f"readings row {b['line']}: kwh {b['kwh']} for household {b['household_id']} "
            "is not a non-negative number"
        )
    bad = df.filter(~pl.col("meter_kind").is_in(METER_KINDS))
    if bad.height:
        b = bad.row(0, named=True)
        raise InputError(
            f"readings row {b['line']}: meter_kind {b['meter_kind']!r} is not one of "
            f"{', '.join(METER_KINDS)}"
        )
    # A repeated naive local time (the hour after a DST fall-back) is the later instant the
    # second time a meter shows it.
    try:
        start = epoch_seconds(df["ts"], tz, "readings", ambiguous="raise")
    except pl.exceptions.ComputeError:  # only then pay for finding the repeats
        repeat = pl.int_range(pl.len()).over("household_id", "meter_kind", "ts")
        later = df.select(repeat > 0).to_series()
        start = epoch_seconds(df["ts"], tz, "readings", later=later)
    # Meters as small integer codes: sorting and grouping integers is what keeps a year of a
    # thousand homes quick. Files list a meter's readings together, so a code is worked out once
    # per run of rows of one household and kind (households are numbered by first appearance,
    # the same over runs as over rows).
    kind_code = pl.col("meter_kind").replace_strict(
        {k: i for i, k in enumerate(METER_KINDS)}, return_dtype=pl.Int64
    )
    hid_code = pl.col("household_id").cast(pl.Categorical).to_physical().cast(pl.Int64)
    run_ends = reduce(
        np.union1d,
        [
            np.cumsum(df.select(pl.col(c).rle().struct.field("len")).to_series(), dtype=np.int64)
            for c in ("household_id", "meter_kind")
        ],
    )
    codes = df[np.r_[0, run_ends[:-1]]].select(hid_code * 4 + kind_code).to_series().to_numpy()
    df = df.with_columns(start=start, meter=np.repeat(codes, np.diff(run_ends, prepend=0)))
    m, st = df["meter"].to_numpy(), df["start"].to_numpy()
    within, step = m[1:] == m[:-1], st[1:] - st[:-1]
    # Files usually list each meter's readings together and in time order: then no sort is
    # needed, and no reading can be there twice (what follows needs each meter's readings
    # together and in time order, once each).
    if len(np.unique(codes)) < len(codes) or (within & (step <= 0)).any():
        df = _sort_once(df)
        m, st = df["meter"].to_numpy(), df["start"].to_numpy()
        within, step = m[1:] == m[:-1], st[1:] - st[:-1]
    # A meter's step changes only where its readings have a gap: take the steps a run of equal
    # ones at a time.
    step[~within] = 0  # where a meter's readings end (steps within one are > 0)
    rle = pl.Series(step).rle().struct.unnest()
    n = rle["len"].to_numpy().astype(np.int64)
    at = np.cumsum(n) - n  # a run's first step; step i goes from row i to row i + 1
    runs = pl.DataFrame({"at": at, "meter": m[at], "step": rle["value"], "n": n}).filter(
        pl.col("step") > 0
    )
    # The commonest step (the smallest of equally common ones).
    steps = (
        runs.group_by("meter", "step")
        .agg(pl.col("n").sum())
        .group_by("meter")
        .agg(interval_s=pl.col("step").filter(pl.col("n") == pl.col("n").max()).min())
    )
    # Each meter's readings are one run of rows: its first row names it.
    heads = np.concatenate([[0], np.flatnonzero(~within) + 1])
    meters = (
        df[heads].select("meter", "household_id", "meter_kind").join(steps, on="meter", how="left")
    )
    common = meters["interval_s"].drop_nulls()
    default = int(common.mode().min()) if len(common) else 1800
    meters = meters.with_columns(pl.col("interval_s").fill_null(default).cast(pl.Int64))
    bad = meters.filter(~pl.col("interval_s").is_between(60, 3600))
    if bad.height:
        b = bad.row(0, named=True)
        raise InputError(
            f"readings: household {b['household_id']} ({b['meter_kind']}) has readings every "
            f"{b['interval_s'] / 60:g} minutes; intervals of 1 to 60 minutes are supported"
        )
    lookup = np.zeros(int(meters["meter"].max()) + 1, np.int64)
    lookup[meters["meter"].to_numpy()] = meters["interval_s"].to_numpy()
    # A reading may not overlap the next one of the same meter.
    off = runs["step"].to_numpy() % lookup[runs["meter"].to_numpy()] != 0
    if off.any():
        b = df.row(int(runs["at"][int(np.argmax(off))]) + 1, named=True)
        raise InputError(
            f"readings row {b['line']}: ts {b['ts']} of household {b['household_id']} is off "
            f"its {lookup[b['meter']] // 60}-minute grid"
        )
    return df.select("meter", "start", "kwh"), meters.sort("meter")


def _sort_once(df: pl.DataFrame) -> pl.DataFrame:
    """Readings sorted by meter and time; a reading given twice (a re-sent file) is kept once,
    two different kwh for one meter and time are an error."""
    df = df.sort("meter", "start", "kwh")
    m, st, kw = df["meter"].to_numpy(), df["start"].to_numpy(), df["kwh"].to_numpy()
    same = (m[1:] == m[:-1]) & (st[1:] == st[:-1])
    exact = same & (kw[1:] == kw[:-1])
    if (same & ~exact).any():
        b = df.row(int(np.argmax(same & ~exact)) + 1, named=True)
        raise InputError(
            f"readings row {b['line']}: household {b['household_id']} has two different kwh "
            f"values for ts {b['ts']}"
        )
    return df.filter(np.concatenate([[True], ~exact])) if exact.any() else df


def epoch_seconds(
    ts: pl.Series, tz: str, table: str, later: pl.Series | None = None, ambiguous="earliest"
) -> pl.Series:
    """Seconds since the epoch; naive values are local time in tz (ambiguous ones the earlier
    instant, or the later where `later` is true)."""
    if ts.dtype == pl.Utf8:
        parsed = ts.str.to_datetime(strict=False, time_unit="us")
        bad = parsed.is_null() & ts.is_not_null()
        if bad.any():
            i = int(bad.arg_max())
            raise InputError(f"{table} row {i + 1}: ts {ts[i]!r} is not a date-time")
        ts = parsed
    if ts.dtype == pl.Date:
        ts = ts.cast(pl.Datetime("us"))
    if not isinstance(ts.dtype, pl.Datetime):
        raise InputError(f"{table}: column 'ts' must be a date-time, not {ts.dtype}")
    if ts.dtype.time_zone is None:
        amb = ambiguous
        if later is not None and later.any():
            amb = pl.Series(["latest" if x else "earliest" for x in later.to_list()])
        local = ts.dt.replace_time_zone(tz, ambiguous=amb, non_existent="null")
        bad = local.is_null() & ts.is_not_null()
        if bad.any():
            i = int(bad.arg_max())
            raise InputError(f"{table} row {i + 1}: ts {ts[i]} does not exist in {tz} (DST gap)")
        ts = local
    # Whole seconds (floored) of the stored value: as dt.epoch("s"), a few times quicker.
    per_s = {"ns": 10**9, "us": 10**6, "ms": 10**3}[ts.dtype.time_unit]
    return (ts.to_physical() // per_s).alias("start")


def _no_nulls(df, table, cols):
    for col in cols:
        nulls = df.filter(pl.col(col).is_null())
        if nulls.height:
            raise InputError(f"{table} row {nulls['line'][0]}: {col} is empty")


def _topology(topology: pl.DataFrame) -> pl.DataFrame:
    for col in ("household_id", "transformer_area"):
        if col not in topology.columns:
            raise InputError(f"topology: missing column {col!r}")
    t = topology.select(
        pl.col("household_id").cast(pl.Utf8), pl.col("transformer_area").cast(pl.Utf8)
    ).with_row_index("line", offset=1)
    _no_nulls(t, "topology", ("household_id", "transformer_area"))
    dup = t.filter(pl.col("household_id").is_duplicated())
    if (
        dup.height
        and dup.unique(["household_id", "transformer_area"]).height
        != dup["household_id"].n_unique()
    ):
        b = dup.row(0, named=True)
        raise InputError(
            f"topology row {b['line']}: household {b['household_id']} is listed in two "
            "transformer areas"
        )
    return t.unique("household_id", keep="first").select("household_id", "transformer_area")


def _events(eng: Engine, events, tz):
    if events is None or events.height == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.int8), np.zeros(0, np.int64)
    for col in ("household_id", "ts", "event"):
        if col not in events.columns:
            raise InputError(f"events: missing column {col!r}")
    e = events.with_row_index("line", offset=1)
    _no_nulls(e, "events", ("household_id", "ts", "event"))
    bad = e.filter(~pl.col("event").is_in(EVENTS))
    if bad.height:
        b = bad.row(0, named=True)
        raise InputError(
            f"events row {b['line']}: event {b['event']!r} is not one of {', '.join(EVENTS)}"
        )
    e = e.with_columns(start=epoch_seconds(e["ts"], tz, "events")).sort(
        "start", maintain_order=True
    )
    rows = np.array([eng._primary(str(h)) for h in e["household_id"]], np.intp)
    codes = np.array([EV[x] for x in e["event"]], np.int8)
    return rows, codes, e["start"].to_numpy()


def _payments(eng: Engine, payments, tz):
    if payments is None or payments.height == 0:
        f = np.zeros(0)
        return np.zeros(0, np.intp), f, f, np.zeros(0, np.int64)
    for col in ("household_id", "ts"):
        if col not in payments.columns:
            raise InputError(f"payments: missing column {col!r}")
    if "amount" not in payments.columns and "balance" not in payments.columns:
        raise InputError("payments: need a column 'amount' or 'balance' (or both)")
    p = payments.with_row_index("line", offset=1)
    _no_nulls(p, "payments", ("household_id", "ts"))
    p = p.with_columns(start=epoch_seconds(p["ts"], tz, "payments")).sort(
        "start", maintain_order=True
    )
    rows = np.array([eng._primary(str(h)) for h in p["household_id"]], np.intp)

    def num(col):
        if col not in p.columns:
            return np.full(p.height, np.nan)
        return p[col].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()

    return rows, num("amount"), num("balance"), p["start"].to_numpy()


def _window(arrs, prev, now):
    ts = arrs[-1]
    if len(ts) == 0:
        return arrs
    lo = 0 if prev is None else np.searchsorted(ts, prev, "right")
    hi = np.searchsorted(ts, now, "right")
    if lo == hi:
        return tuple(x[:0] for x in arrs)
    return tuple(x[lo:hi] for x in arrs)
