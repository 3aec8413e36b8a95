"""Bulk learning: weeks of history in one go, leaving what a tick-by-tick warm-up would learn.

    learn(engine, kw, start, rows=None)   # kw: rows x intervals, float32 kW, NaN = no reading
    learn_readings(engine, readings)      # long household_id / ts / kwh, pivoted onto that grid

Feeding history through `Engine.tick` costs a pass over every home per interval, plus the
quantiles of every hour slot each hour, most of which only serve findings. Here the block is
folded in with whole-array operations over homes and time:

- the intervals are laid out per local hour (hours are absolute: DST days have 23 or 25), so an
  hour's energy, coverage, lowest reading and last activity are a reduction over a short axis,
  and quiet spells are a running maximum of "last activity" across hours;
- the one truly sequential dependency, standby -> activity threshold (a day's lowest reading
  sets the next day's threshold), is a loop over days on small per-home arrays, run first
  from a pass over the data that does not need activity;
- hour slots' quantiles (quiet spells, usual high) and their population priors are computed
  once, from the final rings: nothing learned depends on their intermediate values;
- where the tick path's detectors change what is learned, their rules are applied exactly:
  a data gap (an hour with one open is not learned; data back restarts the quiet spell) from
  each row's latest reading, on the rows with a long enough silence; no_power and
  grid_outage (hours not learned, power back, zero runs kept out of the history) replayed
  interval by interval, but only on the rows in a zero run at that interval.

The result equals the tick warm-up for everything learned (routine.fields, standby, act_thr,
days_seen, population priors, last_end, quiet_since, zrun_cur/lost_since, the engine clock),
value for value: sums are taken in the tick's order, so no rounding differs.

What differs is what follows from findings (STARTS_CLEAR: the detectors' own state, but for
lost_since): learning raises none, so at the end of the block no finding is open — gap_open,
np_open, in_outage and the areas' outages (engine.g), in_open, cs_open — and an anomaly still
going on then is raised by the first live tick instead; what alarms raised during a tick
warm-up would have taught the inactivity detector about the home (in_recent) is not taught, so
after a history with such alarms a learned engine alarms somewhat more; a high-load run in
progress (hl_*) starts counting again. `explained` is a per-interval flag. A block holds
readings only: meter events and payments (a power_off or comm_loss event, a prepaid cut-off)
would, in a tick replay, also have kept hours out of learning; feed such history through tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from lianxin.engine import routine
from lianxin.engine.detectors import DETECTORS
from lianxin.engine.inputs import prepare_readings
from lianxin.engine.text import next_local_hour

ROW_CHUNK = 512  # rows transposed at a time: a chunk of (intervals x rows) stays in cache

# Per-row state learn() leaves as a new engine has it: the detectors' own state (open findings,
# what raised findings taught, runs in progress, meter events, payments) but for the start of
# the zero run going on, and the per-interval scratch flag. Everything else is as tick leaves it.
# Figures the engine prepares during a day for its day end (Engine._prepare_day_end), a share of
# the rows at each of the day's first hours. Learning prepares those of the day in progress as
# tick would have by the end of the block; a tick engine also still holds those it prepared for
# the days before (used up by their day ends), which learning leaves unprepared.
PREPARED = frozenset({"prep_day", "sb_known", "sb_lo", "sb_hi", "cs_usual", "cs_usual_n"})
STARTS_CLEAR = frozenset(
    {"explained", *(name for det in DETECTORS for name in det.FIELDS)} - {"lost_since"} - PREPARED
)


def _gap_intervals(eng, rows: np.ndarray, iv: int) -> int:
    """data_gap's silence, in whole intervals of the block (its rows share an interval): a
    reading this many intervals after the previous one ends a gap (Engine.resume_s)."""
    return -(-int(eng.gap_s[rows[0]]) // iv)


@dataclass
class _Grid:
    """The block's intervals laid out on whole local hours (absolute hours, DST-safe)."""

    iv: int  # interval, s
    k: int  # intervals per hour
    pre: int  # padding intervals before the block, in its first hour
    T: int  # intervals of the block
    H: int  # hours touched by the block; the last is still in progress
    hour_end: np.ndarray  # (H,) end of each hour, epoch s
    label: np.ndarray  # (H,) local hour of day
    day: np.ndarray  # (H,) local day number (days since 1970-01-01)
    seg: np.ndarray  # (H,) day segment: days end after a finished hour labelled 23
    seg_hours: list  # per segment: (first hour, end hour exclusive)
    tick_bits: np.ndarray  # (H * k,) half-hour bits each padded interval covers

    @property
    def S(self) -> int:
        return len(self.seg_hours)

    def tau(self, p):
        """End of padded interval p."""
        return self.hour_end[0] - 3600 + (np.asarray(p) + 1) * self.iv


def _grid(eng, start: int, iv: int, T: int) -> _Grid:
    if 3600 % iv:
        raise ValueError(f"learn: an interval of {iv} s does not divide the hour")
    first, last = start + iv, start + T * iv
    end0 = next_local_hour(first - 1, eng.tz)
    if (end0 - start) % iv:
        raise ValueError("learn: the intervals do not line up with the local hours")
    k = 3600 // iv
    pre = (start - (end0 - 3600)) // iv
    H = 1 + max(0, -(-(last - end0) // 3600))
    hour_end = end0 + 3600 * np.arange(H, dtype=np.int64)
    label = np.empty(H, np.int64)
    day = np.empty(H, np.int64)
    for j, e in enumerate(hour_end.tolist()):
        t = datetime.fromtimestamp(e - 1, eng.tz)
        if (t.minute, t.second) != (59, 59):
            raise ValueError(f"learn: {eng.cfg.tz} has a clock change that is not whole hours")
        label[j], day[j] = t.hour, routine.local_day(t)
    # A day ends when an hour labelled 23 is finished (every hour but the last one is).
    seg = np.concatenate([[0], np.cumsum(label[:-1] == 23)]).astype(np.int64)
    bounds = np.flatnonzero(np.diff(seg)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [H]])
    seg_hours = list(zip(starts.tolist(), ends.tolist(), strict=True))
    if any(len(set(day[a:b].tolist())) != 1 for a, b in seg_hours):
        raise ValueError(f"learn: {eng.cfg.tz} has a day whose hours do not end at 23:00")
    # The half-hour bits of each interval, as Engine.tick computes them from its local time.
    p = np.arange(H * k)
    minute = label[p // k] * 60 + ((p % k + 1) * iv - 1) // 60
    nslots = max(iv // 1800, 1)
    mask = np.uint64((1 << nslots) - 1)
    bits = (mask << (minute // 30 + 1).astype(np.uint64)) >> np.uint64(nslots)
    return _Grid(iv, k, pre, T, H, hour_end, label, day, seg, seg_hours, bits)


def _sequential_sums(step: np.float32, n: int) -> np.ndarray:
    """0, step, step+step, ... accumulated in float32 one at a time, as the tick path does."""
    out = np.zeros(n + 1, np.float32)
    for i in range(n):
        out[i + 1] = out[i] + step
    return out


def _chunks(kw: np.ndarray, g: _Grid):
    """(first row, intervals x rows of kW on whole hours) per chunk of rows, NaN-padded."""
    P = g.H * g.k
    buf = np.full((P, ROW_CHUNK), np.nan, np.float32)
    for r0 in range(0, kw.shape[0], ROW_CHUNK):
        r1 = min(kw.shape[0], r0 + ROW_CHUNK)
        xt = buf[:, : r1 - r0]
        xt[g.pre : g.pre + g.T] = kw[r0:r1].T
        yield r0, r1, xt


def learn(eng, kw: np.ndarray, start: int, rows: np.ndarray | None = None) -> None:
    """Warm a fresh engine up on a block of history, as if it had been fed through Engine.tick
    one interval at a time (every interval of the block is a tick), without raising findings.

    kw: (len(rows), T) mean power in kW per interval (>= 0), NaN where there is no reading;
    row i is engine row rows[i] (default: all rows, in order). All these rows must be
    electricity meters with the same interval, which divides the hour; interval t covers
    [start + t*iv, start + (t+1)*iv), and the intervals line up with the local hours. Engine
    rows not in the block are silent through it. The engine's clock ends at the end of the
    block. Rows given in engine order are read in sequence (fastest).
    """
    if eng.now is not None:
        raise ValueError("learn: the engine has already seen data; learn() warms up a new one")
    rows = np.arange(eng.n) if rows is None else np.asarray(rows, np.intp)
    kw = np.asarray(kw, np.float32)
    if kw.ndim != 2 or kw.shape[0] != len(rows):
        raise ValueError(f"learn: kw must be (rows, intervals), one row per engine row: {kw.shape}")
    if len(np.unique(rows)) != len(rows):
        raise ValueError("learn: an engine row appears twice in the block")
    if kw.shape[1] == 0 or len(rows) == 0:
        return
    a = eng.a
    ivs = np.unique(a.interval_s[rows])
    if len(ivs) != 1:
        raise ValueError("learn: the block's rows must share one interval")
    if not (eng.elec[rows] & eng.primary[rows]).all():
        raise ValueError("learn: the block's rows must be electricity meters")
    iv = int(ivs[0])
    g = _grid(eng, int(start), iv, kw.shape[1])
    ih = a.ih[rows[0]]  # hours per interval, float32 as the tick path adds it
    cover = _sequential_sums(ih, g.H * g.k)  # hour_cov / day_cov after n readings

    days = _day_pass(eng, kw, rows, g)
    thr_start, fresh_start, day_n, first_p, last_p, gappy, zero_at, reporting = days
    power = _PowerRows(eng, kw, rows, g, zero_at, day_n, reporting)
    power.run(ih)
    _hour_pass(eng, kw, rows, g, thr_start, fresh_start, first_p, gappy, power, cover, ih)
    _routine_quantiles(eng, g)

    # Zero runs (and what they learn) come from the rows replayed for power; every other row
    # of the block had a zero run of 0 on each day it reported.
    finished = range(g.S - 1)
    zring = a.zrun_ring
    for s in finished:
        zring[rows, g.day[g.seg_hours[s][0]] % eng.D] = np.where(day_n[:, s] > 0, 0, np.nan)
    r_pw = rows[power.rows]
    zring[r_pw] = power.zring
    if g.S > 1:
        a.zero_thr_h[rows] = routine.kth_largest(zring[rows], 3)
    a.zrun_cur[r_pw] = power.zrun
    a.lost_since[r_pw] = power.lost_since
    a.day_zrun[r_pw] = power.day_zrun
    a.zrun_outage[r_pw] = power.taint
    a.last_end[rows] = np.where(last_p >= 0, g.tau(last_p), a.last_end[rows])
    a.zrun_pos = np.count_nonzero(zring > 0, axis=1).astype(np.uint8)
    eng.sort_quiet_rings()
    eng.now = int(g.tau(g.pre + g.T - 1))
    eng.hour_end = int(g.hour_end[-1])
    # The day end's figures for the day in progress, prepared as tick would have by now (a
    # share of the rows at each of the day's first hours it finished): else the first day end
    # after a warm-up prepares every home at once, a second of that step at a million homes.
    # They rest on complete days only, which the rest of the day does not change.
    first, _end = g.seg_hours[-1]
    for j in range(first, g.H - 1):
        eng.prepare_share(int(g.label[j]), int(g.day[j]))


def _day_pass(eng, kw, rows, g: _Grid):
    """Pass 1: each day's lowest reading and reading count per row; then the day-by-day
    standby -> activity threshold sequence for all engine rows (population prior included).

    Returns the activity threshold each row starts every day with, whether it starts the day
    without a standby (its threshold then follows its lowest reading hour by hour), the
    block rows' day counts, the padded intervals of their first and last reading, the rows
    with a silence that may be long enough for a data gap, the zero readings (interval, row),
    and when homes of transformer areas count as reporting (see power.py, grid_outage)."""
    a, D, S, k = eng.a, eng.D, g.S, g.k
    day_min = np.full((eng.n, S), np.inf, np.float32)
    day_n = np.zeros((len(rows), S), np.int32)
    first_p = np.full(len(rows), -1, np.int64)
    last_p = np.full(len(rows), -1, np.int64)
    gappy = np.zeros(len(rows), bool)
    area = a.area[rows]
    # When each home of an area counts as reporting (a reading within the last day), for the
    # grid outage rule: (padded interval, area, +1 / -1) changes. A home reports from its
    # first reading on, unless it falls silent for a day, which needs a whole silent hour.
    none = np.zeros(0, np.int64)
    changes = [(none, none, none)]
    zero_at = [(none, none)]  # (interval, row) of zero readings
    gap_ticks = _gap_intervals(eng, rows, g.iv)
    # A silence of at least `gap_ticks` intervals always spans a whole hour when it is at least
    # two hours minus one interval long; otherwise any missing reading may start one.
    whole_hour = gap_ticks >= 2 * k - 1
    hour_no = np.arange(g.H)[:, None]
    for r0, r1, xt in _chunks(kw, g):
        n = r1 - r0
        has = xt == xt
        n_h = _per_hour_count(has.reshape(g.H, k, n))
        low = _by_day(np.fmin, xt, g.seg_hours, k)
        day_n[r0:r1] = _by_day(np.add, n_h.astype(np.int32), g.seg_hours, 1).T
        if (low < 0).any():
            raise ValueError("learn: kw has negative readings")
        # The lowest non-zero reading (a zero is an outage, not standby), redone for the rows
        # with a zero reading, which are few.
        zc = np.flatnonzero((low == 0).any(axis=0))
        if len(zc):
            xz = xt[:, zc]
            low[:, zc] = _by_day(np.fmin, np.where(xz > 0, xz, np.nan), g.seg_hours, k)
            p, c = np.nonzero(xz <= 0)
            zero_at.append((p - g.pre, r0 + zc[c]))
        day_min[rows[r0:r1]] = np.where(np.isnan(low), np.inf, low).T
        any_h = n_h > 0
        first_h = np.argmax(any_h, axis=0)
        cols = np.arange(n)
        within = np.argmax(has.reshape(g.H, k, n)[first_h, :, cols], axis=1)
        seen = any_h.any(axis=0)
        first_p[r0:r1] = np.where(seen, first_h * k + within, -1)
        last_h = g.H - 1 - np.argmax(any_h[::-1], axis=0)
        within = k - 1 - np.argmax(has.reshape(g.H, k, n)[last_h, ::-1, cols], axis=1)
        last_p[r0:r1] = np.where(seen, last_h * k + within, -1)
        hour_silent = (~any_h & (hour_no > first_h)).any(axis=0) & seen
        if whole_hour:
            gappy[r0:r1] = hour_silent
        else:
            gappy[r0:r1] = (~has & (np.arange(g.H * k)[:, None] > first_p[r0:r1])).any(axis=0)
            gappy[r0:r1] &= seen
        if len(eng.area_names):
            in_area = area[r0:r1] >= 0
            steady = np.flatnonzero(in_area & seen & ~hour_silent)
            changes.append((first_p[r0:r1][steady], area[r0:r1][steady], np.ones(len(steady))))
            quiet = np.flatnonzero(in_area & hour_silent)
            if len(quiet):
                last = _last_reading(has[:, quiet])
                back = np.arange(g.H * k)[:, None] - last
                rep = ((last >= 0) & (back * g.iv <= 86400)).astype(np.int8)
                change = np.diff(rep, axis=0, prepend=0)
                t, c = np.nonzero(change)
                changes.append((t, area[r0:r1][quiet][c], change[t, c]))

    thr_start = np.empty((eng.n, S), np.float32)
    fresh_start = np.empty((eng.n, S), bool)
    ring = a.sb_ring
    for s in range(S):
        thr_start[:, s] = a.act_thr
        fresh_start[:, s] = np.isnan(a.standby)
        if s == S - 1:
            break  # the day in progress has not ended
        # Engine._finish_day, for standby and what follows from it.
        dmin = day_min[:, s]
        ring[:, g.day[g.seg_hours[s][0]] % D] = np.where(np.isfinite(dmin), dmin, np.nan)
        cnt = np.zeros(eng.n, np.int32)
        cnt[rows] = day_n[:, s]
        a.days_seen += (cnt > 0).astype(np.int16)
        sb, sbn = routine.ring_quantile(ring, 0.5)
        a.standby = np.where(sbn > 0, sb, np.nan).astype(np.float32)
        if not eng.priors_pinned:
            eng.pop["standby"] = routine.population(sb, sbn, 14, routine.DEFAULT_STANDBY_KW)
        a.act_thr = eng._activity_threshold(a.standby)
    t, ar, sign = (np.concatenate(x) for x in zip(*changes, strict=True))
    order = np.argsort(t, kind="stable")
    reporting = t[order], ar[order].astype(np.intp), sign[order].astype(np.int64)
    t, r = (np.concatenate(x) for x in zip(*zero_at, strict=True))
    order = np.argsort(t, kind="stable")
    zero_at = t[order], r[order]
    out = thr_start[rows], fresh_start[rows], day_n, first_p, last_p, gappy, zero_at, reporting
    return out


def _by_day(ufunc, x: np.ndarray, segs: list, unit: int) -> np.ndarray:
    """ufunc.reduce of x (along axis 0, in order) over each day (first hour, end hour) of
    `segs`, with `unit` rows of x per hour: (days, columns). Runs of whole days of the same
    length are reduced in one call."""
    out = np.empty((len(segs), *x.shape[1:]), x.dtype)
    i = 0
    while i < len(segs):
        h0, h1 = segs[i]
        j = i + 1
        while j < len(segs) and segs[j][1] - segs[j][0] == h1 - h0 and segs[j][0] == segs[j - 1][1]:
            j += 1
        L = (h1 - h0) * unit
        block = x[h0 * unit : segs[j - 1][1] * unit].reshape(j - i, L, *x.shape[1:])
        out[i:j] = ufunc.reduce(block, axis=1)
        i = j
    return out


def _per_hour_count(flags3: np.ndarray) -> np.ndarray:
    """(hours, rows) how many of each hour's intervals are flagged, of (hours, k, rows)."""
    f3 = flags3.view(np.uint8)
    n = f3[:, 0].copy()
    for i in range(1, f3.shape[1]):
        n += f3[:, i]
    return n


def _running_max(x: np.ndarray) -> np.ndarray:
    """np.maximum.accumulate(x, axis=0), which numpy runs slowly along axis 0: prefix maxima
    within blocks of 24 rows, then the blocks' maxima carried forward."""
    m, n = x.shape
    B = -(-m // 24)
    xb = np.zeros((B * 24, n), x.dtype)
    xb[:m] = x
    xb = xb.reshape(B, 24, n)
    for i in range(1, 24):
        np.maximum(xb[:, i - 1], xb[:, i], out=xb[:, i])
    carry = xb[:, -1].copy()
    for b in range(1, B):
        np.maximum(carry[b - 1], carry[b], out=carry[b])
    np.maximum(xb[1:], carry[:-1, None, :], out=xb[1:])
    return xb.reshape(B * 24, n)[:m]


def _hour_pass(eng, kw, rows, g: _Grid, thr_start, fresh_start, first_p, gappy, power, cover, ih):
    """Pass 2: activity, quiet spells, hourly means, daily totals and the half-hour words,
    per chunk of rows; the ring slots get the latest hour / day of each.

    Only the last days of the block (those still in the rings) need their hours' figures;
    the days before them only carry the quiet spell forward (the latest activity)."""
    a, D, H, k, iv = eng.a, eng.D, g.H, g.k, g.iv
    start0 = int(g.hour_end[0]) - 3600  # padded interval p ends at start0 + (p + 1) * iv
    last_h = H - 1  # the hour in progress: not learned yet
    # Ring slot (local hour, day % D) -> the latest finished hour that fills it.
    slot_hour = np.full((24, D), -1, np.int64)
    for j in range(last_h):
        slot_hour[g.label[j], g.day[j] % D] = j
    sh, sd = np.nonzero(slot_hour >= 0)
    # Daily totals: the latest finished day of each ring slot; half-hour words: the latest
    # day of each slot, the one in progress included.
    day_slot = {g.day[g.seg_hours[s][0]] % D: s for s in range(g.S - 1)}
    word_days = {g.day[g.seg_hours[s][0]] % D: s for s in range(g.S)}
    days_used = [*day_slot.values(), *word_days.values()]
    w0 = min([last_h, *slot_hour[sh, sd]] + [g.seg_hours[s][0] for s in days_used])
    sj = slot_hour[sh, sd] - w0
    Hw = H - w0  # hours of the window
    p0 = w0 * k  # its first padded interval
    sub_pos = np.full(len(rows), -1, np.int64)
    sub_pos[power.rows] = np.arange(len(power.rows))
    gap = _gap_intervals(eng, rows, iv)
    p_all = np.arange(H * k)[:, None]
    real = (p_all >= g.pre) & (p_all < g.pre + g.T)  # intervals of the block, not padding
    cur0, cur1 = (h - w0 for h in g.seg_hours[-1])
    segs = [(h0 - w0, h1 - w0) for h0, h1 in g.seg_hours]
    slots = sorted(word_days, key=word_days.get)  # in time order: whole days pack together
    day_segs = [segs[word_days[d]] for d in slots]
    seg_len = [h1 - h0 for h0, h1 in g.seg_hours]
    hour_first = (np.arange(H, dtype=np.int32) * k + 1)[:, None]
    # Rows in one run are written through views; any other order through a copy.
    run = bool((np.diff(rows) == 1).all())

    for r0, r1, xt in _chunks(kw, g):
        n = r1 - r0
        er = slice(rows[r0], rows[r0] + n) if run else rows[r0:r1]
        x3 = xt.reshape(H, k, n)

        # The activity threshold of each hour: the day's, or for a row without standby yet,
        # its lowest reading of the day so far (Engine._finish_hour, "fresh" rows).
        thr = np.repeat(thr_start[r0:r1].T, seg_len, axis=0)
        fresh = fresh_start[r0:r1]
        for s, (h0, h1) in enumerate(g.seg_hours):
            f = fresh[:, s]
            if h1 - h0 < 2 or not f.any():
                continue
            low = np.minimum.accumulate(_hour_min(x3[h0 : h1 - 1]), axis=0)
            upd = f & np.isfinite(low)
            thr[h0 + 1 : h1] = np.where(upd, eng._activity_threshold(low), thr[h0 + 1 : h1])
        active = x3 > thr[:, None, :]

        # Quiet spells as interval numbers v: the spell runs from start0 + (v - 1) * iv,
        # 0 = none yet. Activity in interval p makes v = p + 2 (its end), a restart v = p + 1
        # (its start); the spell at an hour's end is the largest v so far.
        la = _last_flagged(active)
        v = hour_first + la
        v *= la > 0
        fp = first_p[r0:r1]
        c = np.flatnonzero(fp >= 0)
        # The first reading starts the first quiet spell (a restart at its start).
        np.maximum.at(v, (fp[c] // k, c), fp[c] + 1)
        # Hours not learned (hour_anom) and restarts of the quiet spell, where detectors had
        # a say: an open no_power or grid outage, power back (see _PowerRows); an open data
        # gap, data back after one (Engine.tick, data_gap.tick).
        anom = np.zeros((H, n), bool)
        sp = sub_pos[r0:r1]
        cs = np.flatnonzero(sp >= 0)
        if len(cs):
            v[:, cs] = np.maximum(v[:, cs], power.since_v[:, sp[cs]])
            anom[:, cs] = power.anom[:, sp[cs]]
        cg = np.flatnonzero(gappy[r0:r1])
        if len(cg):
            xg = xt[:, cg]
            hg = xg == xg
            last = _last_reading(hg)
            before = np.concatenate([np.full((1, len(cg)), -1, last.dtype), last[:-1]])
            silent = real & ~hg & (last >= 0) & (p_all - last >= gap)
            anom[:, cg] |= silent.reshape(H, k, -1).any(axis=1)
            resumed = hg & (before >= 0) & (p_all - before - 1 >= gap)
            la = _last_flagged(resumed.reshape(H, k, -1))
            v[:, cg] = np.maximum(v[:, cg], (hour_first - 1 + la) * (la > 0))  # its start
        a.hour_anom[er] = anom[-1]
        anom = anom[w0:]
        qv = _running_max(v)[w0:]

        xw = xt[p0:]
        has = xw == xw
        has3 = has.reshape(Hw, k, n)
        n_h = _per_hour_count(has3)
        add = np.fmax(xw * ih, np.float32(0))  # kw >= 0: the energy, 0 where no reading
        add3 = add.reshape(Hw, k, n)
        hour_kwh = add3[:, 0].copy()
        for i in range(1, k):  # in the tick's order
            hour_kwh += add3[:, i]
        hour_cov = cover[n_h]

        if len(sj):
            cov = hour_cov[sj]
            good = (cov >= 0.5) & ~anom[sj]
            mean = np.where(good, hour_kwh[sj] / np.maximum(cov, 1e-6), np.nan)
            known = good & eng.primary[er]
            ends = g.hour_end[sj + w0][:, None]
            qs = start0 + (qv[sj].astype(np.int64) - 1) * iv
            quiet_q = np.clip(np.round((ends - qs) / 900.0), 0, routine.Q_MAX)
            q = np.where(known, quiet_q, routine.Q_UNKNOWN).astype(np.uint8)
            for name, values in (("kw_ring", mean), ("q_ring", q)):
                block = a[name][er]
                block[:, sh, sd] = values.T
                if not run:
                    a[name][er] = block

        # Days: totals of the latest finished day per slot; the day in progress.
        for d, s in day_slot.items():
            h0, h1 = segs[s]
            day_kwh = np.add.reduce(add[h0 * k : h1 * k], axis=0)
            day_cov = cover[n_h[h0:h1].sum(axis=0, dtype=np.int32)]
            a.tot_ring[er, d] = np.where(day_cov >= 0.9 * 24, day_kwh, np.nan)
        a.day_kwh[er] = np.add.reduce(add[cur0 * k : cur1 * k], axis=0)
        a.day_cov[er] = cover[n_h[cur0:cur1].sum(axis=0, dtype=np.int32)]
        a.day_min_kw[er] = _hour_min(x3[cur0 + w0 : cur1 + w0]).min(axis=0)
        for name, flags in (("act_bits", active[w0:]), ("seen_bits", has3)):
            words = a[name][er]
            words[:, slots] = _day_words(_halves(flags, g), g.label[w0:], day_segs)
            if not run:
                a[name][er] = words

        # The hour in progress, and where the clock stops.
        a.hour_kwh[er] = hour_kwh[-1]
        a.hour_cov[er] = hour_cov[-1]
        a.act_thr[er] = thr[last_h]
        a.quiet_since[er] = np.where(qv[-1] > 0, start0 + (qv[-1].astype(np.int64) - 1) * iv, 0)


def _last_reading(has: np.ndarray) -> np.ndarray:
    """(intervals, rows) the interval of each row's latest reading so far; -1 before any."""
    p = np.arange(has.shape[0], dtype=np.int32)[:, None]
    return _running_max(np.where(has, p, np.int32(-1)))


def _last_flagged(flags3: np.ndarray) -> np.ndarray:
    """(hours, rows) 1 + the index of each hour's last flagged interval, 0 = none."""
    f8 = flags3.view(np.uint8)
    out = f8[:, 0].copy()
    for i in range(1, f8.shape[1]):
        np.maximum(out, f8[:, i] * np.uint8(i + 1), out=out)
    return out


def _hour_min(x3: np.ndarray) -> np.ndarray:
    """(hours, rows) lowest non-zero reading of each hour; inf where none."""
    return np.where(x3 > 0, x3, np.inf).min(axis=1)


def _halves(flags3: np.ndarray, g: _Grid) -> np.ndarray:
    """(hours, 2, rows): whether any interval flagged in each half of each hour, by the half-hour
    bits Engine.tick gives each interval (a 60-minute reading covers both halves)."""
    rel = g.tick_bits[: g.k] >> np.uint64(2 * g.label[0])
    first = np.flatnonzero(rel & np.uint64(1))
    second = np.flatnonzero(rel & np.uint64(2))
    if g.k % 2 == 0 and np.array_equal(first, np.arange(g.k // 2)) and len(second) == g.k // 2:
        # Intervals of up to 30 minutes: the first k/2 fall in the first half hour.
        h, _, n = flags3.shape
        return flags3.reshape(h, 2, g.k // 2, n).any(axis=2) if g.k > 2 else flags3
    out = np.empty((flags3.shape[0], 2, flags3.shape[2]), bool)
    out[:, 0] = np.logical_or.reduce(flags3[:, first], axis=1)
    out[:, 1] = np.logical_or.reduce(flags3[:, second], axis=1)
    return out


def _day_words(halves: np.ndarray, label: np.ndarray, segs: list) -> np.ndarray:
    """(rows, len(segs)) the 48 half-hour bits of each day (first hour, end hour) as one word;
    halves: (hours, 2, rows), label: the hours' local hour of day."""
    n = halves.shape[2]
    packed = np.zeros((n, len(segs), 8), np.uint8)
    i = 0
    while i < len(segs):
        h0, h1 = segs[i]
        labels = label[h0:h1]
        if h1 - h0 == 24 and labels[0] == 0:
            # Whole days in a row: their half hours are one block of memory, in order.
            j = i + 1
            while j < len(segs) and segs[j] == (h0 + 24 * (j - i), h0 + 24 * (j - i + 1)):
                j += 1
            bits = halves[h0 : h0 + 24 * (j - i)].reshape(j - i, 48, n)
            packed[:, i:j, :6] = np.packbits(bits, axis=1, bitorder="little").transpose(2, 0, 1)
            i = j
            continue
        day = np.zeros((24, 2, n), bool)
        if len(set(labels.tolist())) == h1 - h0:
            day[labels] = halves[h0:h1]
        else:  # a day whose clock went back: the repeated hour adds to the same bits
            for j, lab in zip(range(h0, h1), labels.tolist(), strict=True):
                day[lab] |= halves[j]
        packed[:, i, :6] = np.packbits(day.reshape(48, n), axis=0, bitorder="little").T
        i += 1
    return packed.view(np.uint64)[..., 0]


class _PowerRows:
    """The power detector (no_power, grid_outage) replayed interval by interval on the rows
    with zero readings and the other homes of their areas, for a block without meter events
    or prepaid cut-offs: keeping its state, raising nothing. An open no_power or outage keeps
    the hour out of the routine; power back restarts the quiet spell; an outage of the area
    keeps a home's zero run out of its history. Zero runs are this home's own history."""

    def __init__(self, eng, kw, rows, g: _Grid, zero_at, day_n, reporting):
        self.eng, self.g, self.kw = eng, g, kw
        sub = np.unique(zero_at[1])  # block rows with a zero reading
        self.rows = sub
        self.zero_t, self.zero_r = zero_at[0], np.searchsorted(sub, zero_at[1])
        self.day_n = day_n[sub]
        self.area = eng.a.area[rows[sub]]
        ns = len(sub)
        self.anom = np.zeros((g.H, ns), bool)
        self.since_v = np.zeros((g.H, ns), np.int64)
        self.zring = eng.a.zrun_ring[rows[sub]].copy()
        self.zthr = eng.a.zero_thr_h[rows[sub]].copy()
        self.zrun = np.zeros(ns, np.float32)
        self.day_zrun = np.zeros(ns, np.float32)
        self.lost_since = np.zeros(ns, np.int64)
        self.taint = np.zeros(ns, bool)  # Engine's zrun_outage
        self.last_has = np.full(ns, -(2**40), np.int64)  # interval of the latest reading
        self.gap = _gap_intervals(eng, rows, g.iv)
        self.reporting = reporting  # see _day_pass
        self.n_rep = np.zeros(len(eng.area_names), np.int64)
        self.applied = 0

    def run(self, ih: np.float32) -> None:
        """Interval by interval, as power.tick, but on the rows where something can happen at
        that interval: a zero reading now, a zero run going on, or an outage of the area."""
        eng, g, cfg = self.eng, self.g, self.eng.cfg
        ns = len(self.rows)
        if ns == 0:
            return
        iv = g.iv
        areas = len(eng.area_names) > 0
        zrun, day_zrun, lost_since, taint = self.zrun, self.day_zrun, self.lost_since, self.taint
        np_open = np.zeros(ns, bool)
        in_outage = np.zeros(ns, bool)
        outage_since = np.zeros(len(eng.area_names), np.int64)
        cz = self.zero_r
        at = np.searchsorted(self.zero_t, np.arange(g.T + 1))
        hour = g.pre // g.k
        for p in range(g.pre, g.pre + g.T):
            j = p // g.k
            if j != hour:  # the previous hour ended; at 23:00 its day too
                if g.label[hour] == 23:
                    s = g.seg[hour]
                    d = g.day[hour] % eng.D
                    self.zring[:, d] = np.where(self.day_n[:, s] > 0, day_zrun, np.nan)
                    self.zthr = routine.kth_largest(self.zring, 3)
                    day_zrun[:] = 0
                hour = j
            t = p - g.pre
            going = np.flatnonzero((zrun > 0) | in_outage)
            r = np.union1d(cz[at[t] : at[t + 1]], going) if len(going) else cz[at[t] : at[t + 1]]
            if not len(r):
                continue
            now = int(g.tau(p))
            x = self.kw[self.rows[r], t]
            has = x == x
            # Engine.tick
            zero = has & (x <= 0)
            before = zrun[r]
            # Data back after a gap restarts a zero run (Engine.tick). A run going on keeps
            # its row in play, so last_has is its last reading.
            restart = has & (before > 0) & (p - self.last_has[r] - 1 >= self.gap)
            zr = np.where(zero, np.where(restart, 0, before) + ih, np.where(has, 0, before))
            zrun[r] = zr
            # A run enters the history when it ends, unless it was an outage's (Engine.tick).
            ended = has & (~zero | restart)
            tainted = taint[r]
            own = ended & ~tainted
            day_zrun[r] = np.where(own, np.maximum(day_zrun[r], before), day_zrun[r])
            taint[r] = tainted & ~ended
            self.last_has[r[has]] = p
            # power.tick
            zero_long = zr > self.zthr[r] + 1e-3
            lost = zr > 0
            back_on = ~lost & (lost_since[r] > 0) & (np_open[r] | in_outage[r])
            self.since_v[j, r[back_on]] = p + 1  # the quiet spell restarts at its start
            ls = lost_since[r]
            ls[restart] = 0  # (power.tick: the loss starts with the zeros after the gap)
            ls[lost & (ls == 0)] = now - iv
            ls[~lost] = 0
            lost_since[r] = ls
            if areas and zero_long.any():
                self._grid(p, now, r, lost, in_outage, outage_since, cfg)
            if areas and (outage_since > 0).any():
                self._resolve_grid(zrun > 0, in_outage, outage_since)
            cand = zero_long & has & ~in_outage[r] & ~np_open[r]
            if cand.any() and areas:
                area = self.area[r]
                in_area = area >= 0
                dark = np.bincount(area[in_area & lost], minlength=len(eng.area_names))
                neighbours = np.where(in_area, dark[np.maximum(area, 0)], 0)
                cand &= ~((neighbours >= 2) & (now - ls < 2 * iv))
            np_open[r] = (np_open[r] | cand) & lost
            self.anom[j, r] |= np_open[r] | in_outage[r]
            out_now = in_outage[r]
            day_zrun[r[out_now]] = 0
            taint[r] = taint[r] | out_now

    def _grid(self, p, now, r, lost, in_outage, outage_since, cfg) -> None:
        """power._grid without the finding: areas where enough homes went dark together.
        r: the rows in play (every home that is dark is among them), lost: theirs."""
        iv = self.g.iv
        area, n_areas = self.area[r], len(outage_since)
        in_area = area >= 0
        fresh = lost & in_area & (now - self.lost_since[r] <= 2 * iv)
        n_fresh = np.bincount(area[fresh], minlength=n_areas)
        # Homes of each area that reported within the last day, up to this interval.
        t, ar, sign = self.reporting
        upto = np.searchsorted(t, p, "right")
        np.add.at(self.n_rep, ar[self.applied : upto], sign[self.applied : upto])
        self.applied = upto
        n_rep = self.n_rep
        need = np.maximum(cfg.grid_min_homes, np.ceil(cfg.grid_min_share * n_rep))
        for ar in np.flatnonzero((n_fresh >= need) & (outage_since == 0)):
            members = r[lost & (area == ar)]
            outage_since[ar] = self.lost_since[members].min()
            in_outage[members] = True
        if (outage_since > 0).any():
            joins = lost & in_area & ~in_outage[r]
            joins &= np.where(in_area, outage_since[np.maximum(area, 0)] > 0, False)
            in_outage[r[joins]] = True

    def _resolve_grid(self, lost, in_outage, outage_since) -> None:
        for ar in np.flatnonzero(outage_since > 0):
            members = in_outage & (self.area == ar)
            if (members & lost).sum() * 2 > members.sum():
                continue
            outage_since[ar] = 0
            in_outage[members] = False


def _routine_quantiles(eng, g: _Grid) -> None:
    """Engine._finish_hour's learned figures per hour slot, from the final rings: each slot's
    last update saw exactly these rings, and the population priors are taken over all rows.
    Hour slots the block never finished keep what they had."""
    a, cfg = eng.a, eng.cfg
    hours = sorted(set(g.label[: g.H - 1].tolist()))
    if not hours:
        return
    qn = np.count_nonzero(a.q_ring != routine.Q_UNKNOWN, axis=-1).astype(np.uint8)
    qv = routine.ring_quantile_codes(a.q_ring, qn, cfg.inactivity_quantile) / 4.0
    if cfg.high_load_quantile >= 1.0:
        hv, hn = routine.ring_quantile(a.kw_ring, 1.0)
        a.high_max[:, hours], a.high_n[:, hours] = hv[:, hours], hn[:, hours]
    else:
        hv, hn = routine.ring_quantile(a.kw_ring, cfg.high_load_quantile)
    hn = hn.astype(np.uint8)
    for h in hours:
        eng.set_hour_slot(h, qv[:, h], qn[:, h], hv[:, h], hn[:, h])


def learn_readings(eng, readings: pl.DataFrame, end: int | None = None) -> int:
    """learn() from long readings (household_id, ts, kwh, optional meter_kind; naive ts =
    local time), registering unknown homes; the block runs from the first reading to the
    latest reading's end, or if later to the last interval ending by `end` (epoch s), as if
    the clock had moved on without data. Returns the readings learned from.

    Validated and converted as replay() does, so learning a file and replaying it see the same
    numbers."""
    if readings.height == 0:
        return 0
    r, homes = prepare_readings(readings, eng.cfg.tz)
    eng.register(homes)
    keys = [
        h if m == "electricity" else f"{h}#{m}"
        for h, m in zip(homes["household_id"], homes["meter_kind"], strict=True)
    ]
    row_of = np.zeros(int(homes["meter"].max()) + 1, np.intp)
    row_of[homes["meter"].to_numpy()] = [eng.index[key] for key in keys]
    meter_rows = row_of[homes["meter"].to_numpy()]
    ivs = np.unique(eng.a.interval_s[meter_rows])
    if len(ivs) != 1:
        raise ValueError("learn: readings of one interval length only (learn them apart)")
    iv = int(ivs[0])
    start = r["start"].to_numpy()
    t0 = int(start.min())
    T = int(start.max() - t0) // iv + 1
    if end is not None:
        T = max(T, (int(end) - t0) // iv)
    # Engine rows -> matrix rows, in engine order (the transposes read rows in sequence).
    order = np.sort(meter_rows)
    pos = np.zeros(eng.n, np.intp)
    pos[order] = np.arange(len(order))
    kw = np.full((len(order), T), np.nan, np.float32)
    rr = pos[row_of[r["meter"].to_numpy()]]
    kw[rr, (start - t0) // iv] = (r["kwh"].to_numpy() * 3600.0 / iv).astype(np.float32)
    learn(eng, kw, t0, order)
    return r.height
