"""The learned routine of each home: what it usually does at each local hour.

Learning happens when a local hour (or day) ends, one ring slot per local day, so a finding
raised at any instant uses only what the engine had seen by then, and feeding intervals one at
a time or in blocks learns the same thing. Hours in which a detector had an open finding are
not learned: an emergency must not become the new normal.
"""

from __future__ import annotations

import functools

import numpy as np

# Quiet-spell lengths are kept in quarter hours in one byte; 255 marks "no data that hour".
Q_UNKNOWN = 255
Q_MAX = 254

# Population priors used until enough homes have history (a generic household).
DEFAULT_STANDBY_KW = 0.12
DEFAULT_QUIET_H = np.array(
    # 00 .. 23: long quiet spells are normal at night, short ones by day
    [5, 6, 7, 8, 9, 9.5, 10, 10, 9, 7, 6, 6, 6, 6, 6, 6, 6, 6, 5, 5, 5, 4, 4, 4.5],
    dtype=np.float32,
)
DEFAULT_HIGH_KW = np.float32(2.0)
EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal(): local days are counted from the epoch


def local_day(local) -> int:
    return local.toordinal() - EPOCH_ORDINAL


# Fields of which every interval or local hour end reads or writes one slot (a day of a
# ring, an hour of the learned figures) for every home: kept with rows last in memory (still
# indexed row first), so that slot is one contiguous block instead of one cache line per
# home. Code that replaces such an array whole must keep that layout (Engine._alloc).
ROWS_LAST = frozenset(
    {"kw_ring", "q_ring", "act_bits", "seen_bits", "quiet_thr", "quiet_n", "high_kw"}
    | {"high_max", "high_n"}
)


# Per-home arrays of the routine: name -> (dtype, trailing shape, fill). D = history days.
def fields(days: int) -> dict:
    return {
        # float32: converting or reducing strided float16 costs more time than it saves memory
        "kw_ring": (np.float32, (24, days), np.nan),  # hourly mean kW per local day
        "q_ring": (np.uint8, (24, days), Q_UNKNOWN),  # quiet spell at the end of each hour
        "tot_ring": (np.float32, (days,), np.nan),  # daily totals, kWh (complete days only)
        "zrun_ring": (np.float32, (days,), np.nan),  # longest zero run of each day, hours
        "sb_ring": (np.float32, (days,), np.nan),  # lowest hourly mean of each day, kW
        "quiet_thr": (np.float32, (24,), np.nan),  # learned quiet quantile per hour, h
        "quiet_n": (np.uint8, (24,), 0),  # days behind quiet_thr
        "high_kw": (np.float32, (24,), np.nan),  # learned usual high per hour, kW
        # the highest hourly mean in kw_ring and how many known (kept up to date slot by slot)
        "high_max": (np.float32, (24,), np.nan),
        "high_n": (np.uint8, (24,), 0),
        "standby": (np.float32, (), np.nan),
        "zero_thr_h": (np.float32, (), 0.0),
        "days_seen": (np.int16, (), 0),
        # accumulators of the hour and day in progress
        "hour_kwh": (np.float32, (), 0.0),
        "hour_cov": (np.float32, (), 0.0),
        "hour_anom": (np.bool_, (), False),
        # activity and data coverage by local half hour (bit i = slot i), one word per day
        "act_bits": (np.uint64, (days,), 0),
        "seen_bits": (np.uint64, (days,), 0),
        "day_kwh": (np.float32, (), 0.0),
        "day_cov": (np.float32, (), 0.0),
        "day_min_kw": (np.float32, (), np.inf),
        "day_zrun": (np.float32, (), 0.0),
        # days in zrun_ring with a zero run (> 0 h), kept up to date slot by slot
        "zrun_pos": (np.uint8, (), 0),
        # Prepared during a day for its day end (see prepare_day_end): the standby ring without
        # the slot the day end replaces, as its known count and the two values around its median.
        "prep_day": (np.int32, (), -1),  # the local day these were prepared for; -1 = none
        "sb_known": (np.uint8, (), 0),
        "sb_lo": (np.float32, (), np.nan),
        "sb_hi": (np.float32, (), np.nan),
    }


def ring_quantile(x: np.ndarray, q: float, owned: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Quantile along the last axis ignoring unknown (NaN) entries.

    Sorting puts NaN last, so the valid values come first.
    Returns (value, count); value is NaN where count is 0. owned: x is a float32 scratch
    array the caller gives up, sorted in place (saves copying it).
    """
    if q >= 1.0:  # the maximum needs no sort
        f = np.ascontiguousarray(x, dtype=np.float32)
        n = np.count_nonzero(~np.isnan(f), axis=-1)
        return np.fmax.reduce(f, axis=-1), n
    # numpy sorts float32 several times faster than float16 or uint8 along a short axis.
    f = x if owned and x.dtype == np.float32 else x.astype(np.float32)
    f.sort(axis=-1)  # in place: f is a copy of x (or the caller's scratch)
    n = np.count_nonzero(~np.isnan(f), axis=-1)
    idx = np.ceil(q * np.maximum(n - 1, 0)).astype(np.intp)
    v = np.take_along_axis(f, idx[..., None], axis=-1)[..., 0].astype(np.float32)
    v[n == 0] = np.nan
    return v, n


def ring_quantile_codes(x: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """ring_quantile of quiet codes (uint8, Q_UNKNOWN = unknown) given the count of known ones.

    Q_UNKNOWN is larger than every known code, so a plain sort already puts unknowns last: the
    same value as ring_quantile over the codes with unknowns masked as NaN, without masking.
    """
    s = x.astype(np.float32)
    s.sort(axis=-1)  # in place, on the copy
    n = n.astype(np.intp)
    idx = np.ceil(q * np.maximum(n - 1, 0)).astype(np.intp)
    v = np.take_along_axis(s, idx[..., None], axis=-1)[..., 0].astype(np.float32)
    v[n == 0] = np.nan
    return v


def sorted_replace(s: np.ndarray, old: np.ndarray, new: np.ndarray) -> None:
    """The incremental form of re-sorting a ring after one slot of it changed.

    s: (D, n) uint8 whose columns are sorted ascending (a sorted copy of n rings, rows last so
    every step below is a plain vector operation). In each column one copy of old[i] becomes
    new[i], in place, and the column stays sorted: a few passes over s instead of a sort.
    Done in blocks of columns: the temporaries stay small (in cache, and no fresh pages).
    """
    for c in range(0, s.shape[1], SORTED_BLOCK):
        b = slice(c, c + SORTED_BLOCK)
        _sorted_replace(s[:, b], old[b], new[b])


SORTED_BLOCK = 1 << 15


def _sorted_replace(s, old, new) -> None:
    u8 = np.uint8
    below_new = s < new
    pos = np.add.reduce(below_new.view(u8), axis=0, dtype=u8)  # where new goes (old counted)
    from_old = s[:-1] >= old
    # old < new: the values after old, up to new, move one place toward the front;
    # new < old: the values from new's place up to old move one place toward the back.
    fwd = from_old & below_new[1:]
    back = np.bitwise_or(below_new[:-1], from_old, out=from_old)
    step = s[1:] - s[:-1]  # uint8 arithmetic wraps around; adding it back is exact
    fwd_step = step * fwd.view(u8)
    step *= ~back.view(bool)  # back is True where the value stays (new >= old or out of range)
    s[:-1] += fwd_step
    s[1:] -= step
    pos -= new > old  # old has left the front part
    n = s.shape[1]
    s[pos.astype(np.intp), np.arange(n)] = new


def sorted_quantile(s: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """ring_quantile of codes from their sorted copy (D, rows) and the count of known ones:
    unknown codes are the largest, so the known ones come first."""
    idx = _quantile_index(q).take(n)
    v = s.reshape(-1)[idx * s.shape[1] + np.arange(s.shape[1])].astype(np.float32)
    v[n == 0] = np.nan
    return v


@functools.lru_cache(maxsize=4)
def _quantile_index(q: float) -> np.ndarray:
    """The position of quantile q among n sorted known values, for every count n of a ring."""
    return np.ceil(q * np.maximum(np.arange(256) - 1, 0)).astype(np.intp)


def median_prepare(ring: np.ndarray, skip: int):
    """What the median of each row of `ring` will need once slot `skip` gets a new value: the
    known count of the other slots and, sorted, their values at ceil(known/2) - 1 and
    ceil(known/2) (NaN where there is none). See median_complete."""
    r = np.array(ring, dtype=np.float32)  # a copy, sorted in place
    r[:, skip] = np.nan
    r.sort(axis=-1)
    known = np.count_nonzero(~np.isnan(r), axis=-1)
    k = np.ceil(0.5 * known).astype(np.intp)
    at = np.arange(len(r)) * r.shape[1] + k
    lo = np.where(k > 0, r.reshape(-1)[np.maximum(at - 1, 0)], np.float32(np.nan))
    return known, lo, r.reshape(-1)[at]


def median_complete(known, lo, hi, x) -> tuple[np.ndarray, np.ndarray]:
    """ring_quantile(ring, 0.5) once the skipped slot holds x, from median_prepare's figures:
    exactly the value a sort would pick. The median of the other values plus x is x held
    between the two values around their middle (or, where x is unknown, one of those two)."""
    has = ~np.isnan(x)
    n = known.astype(np.int64) + has
    v = np.where(has, np.fmin(np.fmax(x, lo), hi), np.where(known % 2 == 1, lo, hi))
    return v.astype(np.float32), n


def ring_max_update(ring, old_max, old_n, old, new) -> tuple[np.ndarray, np.ndarray]:
    """The maximum and count of known (non-NaN) values of each row of `ring` after one slot of
    it went from `old` to `new`, from the previous maximum and count: exactly
    ring_quantile(ring, 1.0). Only rows whose old value was the maximum are rescanned."""
    old_known = ~np.isnan(old)
    n = (old_n - old_known + ~np.isnan(new)).astype(np.uint8)
    m = np.fmax(old_max, new)
    redo = (old_known & (old >= old_max)).nonzero()[0]
    if len(redo):
        m[redo] = np.fmax.reduce(ring[redo], axis=-1)
    return m, n


def blend(personal: np.ndarray, n: np.ndarray, prior, weight_days: float) -> np.ndarray:
    """A home's own figure weighted by its days of history against the population prior."""
    w = n.astype(np.float32)
    p = np.where(np.isnan(personal), 0.0, personal)
    return ((w * p + weight_days * prior) / (w + weight_days)).astype(np.float32, copy=False)


def population(values: np.ndarray, n: np.ndarray, min_days: int, default):
    """Median over homes with enough history; the built-in default while there are few."""
    ok = n >= min_days
    if np.count_nonzero(ok) >= 5:
        v = values[ok]
        # A median of an evenly spread sample of at most ~20,000 homes is as good a prior.
        return np.float32(median(v[:: max(1, len(v) // 20000)]))
    return np.float32(default)


def median(v: np.ndarray):
    """np.median of a 1-D array, without its generic machinery (called twice an hour)."""
    n = len(v)
    if np.count_nonzero(np.isnan(v)):
        return np.median(v)
    h = n // 2
    p = v.copy()  # partitioned in place (np.partition copies too, behind two Python calls)
    if n % 2:
        p.partition(h)
        return p[h]
    p.partition((h - 1, h))
    return (p[h - 1] + p[h]) / 2


def kth_largest(x: np.ndarray, k: int) -> np.ndarray:
    """The k-th largest value along the last axis ignoring NaN; 0 where fewer than k values."""
    s = np.where(np.isnan(x), -np.inf, x)
    s.sort(axis=-1)
    v = s[..., -k]
    return np.where(np.isfinite(v), v, 0).astype(np.float32)


def rows(mask: np.ndarray):
    """Indices where (1-D) mask is set; the cheap test first, as most intervals raise nothing.
    (count_nonzero and nonzero are C calls; any and flatnonzero add a Python layer, which is
    what a replay of 1,000 homes pays for, many times an interval.)"""
    return mask.nonzero()[0] if np.count_nonzero(mask) else ()
