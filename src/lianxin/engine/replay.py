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
from lianxin.engine.core import Engine
from lianxin.engine.findings import Finding
from lianxin.engine.inputs import InputError, epoch_seconds, no_nulls, prepare_readings
from lianxin.meterdata import ENGINE_EVENT_CODE, ENGINE_EVENTS

CHUNK_TICKS = 2048
DENSE_CELLS = 1 << 25  # ticks x rows of one chunk's grid of readings (float32: 128 MiB)
ALLOWED_INTERVALS_S = range(60, 3601)


def replay(
    readings: pl.DataFrame,
    *,
    topology: pl.DataFrame | None = None,
    events: pl.DataFrame | None = None,
    payments: pl.DataFrame | None = None,
    settings: pl.DataFrame | None = None,
    tz: str | None = None,
    config: EngineConfig | None = None,
    engine: Engine | None = None,
    progress: Callable[[int, int], None] | None = None,
    clock: tuple[int, int, int] | None = None,
) -> list[Finding]:
    """Findings (raised and resolved, in detection order) of a causal replay of `readings`.

    readings: household_id (str), ts (start of the interval; naive = local time in `tz`, default
    the deployment's zone, or timezone-aware), the interval's quantity; optional meter_kind
    (electricity/water/gas). See prepare_readings for the quantity's column. A missing row is no
    data. Pass `engine` to continue from a restored state (its config wins).
    `progress(ticks done, ticks)` is called after each chunk (the engine knows no terminal).
    `clock` (first tick, tick seconds, last tick; see replay_clock and shared_clock): tick on
    that grid through that end instead of these readings' own, so that engines holding shards
    of the homes tick exactly as one engine holding them all (lianxin.spark).
    """
    return _replay(readings, topology, events, payments, settings, tz, config, engine,
                   progress, clock)  # fmt: skip


def replay_clock(
    readings: pl.DataFrame,
    *,
    topology: pl.DataFrame | None = None,
    events: pl.DataFrame | None = None,
    payments: pl.DataFrame | None = None,
    tz: str | None = None,
    config: EngineConfig | None = None,
    engine: Engine | None = None,
) -> tuple[int, int, int]:
    """(first tick, tick seconds, last tick) a replay of these readings would run, ticking none
    (the engine given is registered with the homes, as replay would)."""
    return _replay(readings, topology, events, payments, None, tz, config, engine, None, None,
                   dry=True)  # fmt: skip


def shared_clock(clocks: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    """The one clock of several shards' replay_clock(): the earliest first tick, the finest grid
    every shard's ticks lie on, the latest last tick."""
    first = min(c[0] for c in clocks)
    tick = int(np.gcd.reduce([c[1] for c in clocks] + [c[0] - first for c in clocks]))
    return first, tick, max(c[2] for c in clocks)


def _replay(readings, topology, events, payments, settings, tz, config, engine, progress, clock,
            dry=False):  # fmt: skip
    eng = engine or Engine(config or (EngineConfig(tz=tz) if tz else EngineConfig()))
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
    # those costs more than laying the readings out). A Python step per meter and chunk: right
    # for the thousands of homes a replay holds in memory, not for millions.
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
    if dry:
        return first, tick_s, last
    if clock is not None:
        if clock[1] <= 0 or tick_s % clock[1] or (first - clock[0]) % clock[1]:
            raise InputError(f"readings do not lie on the shared clock {clock}")
        first, tick_s, last = clock
        if eng.now is not None and first <= eng.now:
            raise InputError(f"shared clock starts at {first}, not after the engine's {eng.now}")
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


def _topology(topology: pl.DataFrame) -> pl.DataFrame:
    for col in ("household_id", "transformer_area"):
        if col not in topology.columns:
            raise InputError(f"topology: missing column {col!r}")
    t = topology.select(
        pl.col("household_id").cast(pl.Utf8), pl.col("transformer_area").cast(pl.Utf8)
    ).with_row_index("line", offset=1)
    no_nulls(t, "topology", ("household_id", "transformer_area"))
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
    t = t.unique("household_id", keep="first").select("household_id", "transformer_area")
    if "resolution_kwh" in topology.columns:
        # The registry's register resolution of each home's meters (the coarsest of a 换表 pair).
        res = topology.group_by(pl.col("household_id").cast(pl.Utf8)).agg(
            pl.col("resolution_kwh").cast(pl.Float64).max()
        )
        t = t.join(res, on="household_id", how="left", maintain_order="left")
    return t


def _events(eng: Engine, events, tz):
    if events is None or events.height == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.int8), np.zeros(0, np.int64)
    for col in ("household_id", "ts", "event"):
        if col not in events.columns:
            raise InputError(f"events: missing column {col!r}")
    e = events.with_row_index("line", offset=1)
    no_nulls(e, "events", ("household_id", "ts", "event"))
    bad = e.filter(~pl.col("event").is_in(ENGINE_EVENTS))
    if bad.height:
        b = bad.row(0, named=True)
        raise InputError(
            f"events row {b['line']}: event {b['event']!r} is not one of {', '.join(ENGINE_EVENTS)}"
        )
    e = e.with_columns(start=epoch_seconds(e["ts"], tz, "events")).sort(
        "start", maintain_order=True
    )
    rows = np.array([eng._primary(str(h)) for h in e["household_id"]], np.intp)
    codes = np.array([ENGINE_EVENT_CODE[x] for x in e["event"]], np.int8)
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
    no_nulls(p, "payments", ("household_id", "ts"))
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
