"""The learned routine of each home: what it usually does at each local hour.

Learning happens when a local hour (or day) ends, one ring slot per local day, so a finding
raised at any instant uses only what the engine had seen by then, and feeding intervals one at
a time or in blocks learns the same thing. Hours in which a detector had an open finding are
not learned: an emergency must not become the new normal.
"""

from __future__ import annotations

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
    }


def ring_quantile(
    x: np.ndarray, q: float, unknown=None, owned: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Quantile along the last axis ignoring unknown entries (NaN, or the `unknown` code).

    Sorting puts NaN (and the largest code, 255) last, so the valid values come first.
    Returns (value, count); value is NaN where count is 0. owned: x is a float32 scratch
    array the caller gives up, sorted in place (saves copying it).
    """
    if q >= 1.0 and unknown is None:  # the maximum needs no sort
        f = np.ascontiguousarray(x, dtype=np.float32)
        n = np.count_nonzero(~np.isnan(f), axis=-1)
        return np.fmax.reduce(f, axis=-1), n
    # numpy sorts float32 several times faster than float16 or uint8 along a short axis.
    f = x if owned and x.dtype == np.float32 and unknown is None else x.astype(np.float32)
    if unknown is not None:
        f[x == unknown] = np.nan
    f.sort(axis=-1)  # in place: f is a copy of x (or the caller's scratch)
    s = f
    n = np.count_nonzero(~np.isnan(f), axis=-1)
    idx = np.ceil(q * np.maximum(n - 1, 0)).astype(np.intp)
    v = np.take_along_axis(s, idx[..., None], axis=-1)[..., 0].astype(np.float32)
    v[n == 0] = np.nan
    return v, n


def ring_quantile_codes(x: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """ring_quantile of quiet codes (uint8, Q_UNKNOWN = unknown) given the count of known ones.

    Q_UNKNOWN is larger than every known code, so a plain sort already puts unknowns last: the
    same value as ring_quantile(x, q, Q_UNKNOWN) without masking them as NaN first.
    """
    s = x.astype(np.float32)
    s.sort(axis=-1)  # in place, on the copy
    n = n.astype(np.intp)
    idx = np.ceil(q * np.maximum(n - 1, 0)).astype(np.intp)
    v = np.take_along_axis(s, idx[..., None], axis=-1)[..., 0].astype(np.float32)
    v[n == 0] = np.nan
    return v


def ring_max_update(ring, old_max, old_n, old, new) -> tuple[np.ndarray, np.ndarray]:
    """The maximum and count of known (non-NaN) values of each row of `ring` after one slot of
    it went from `old` to `new`, from the previous maximum and count: exactly
    ring_quantile(ring, 1.0). Only rows whose old value was the maximum are rescanned."""
    old_known = ~np.isnan(old)
    n = (old_n - old_known + ~np.isnan(new)).astype(np.uint8)
    m = np.fmax(old_max, new)
    redo = np.flatnonzero(old_known & (old >= old_max))
    if len(redo):
        m[redo] = np.fmax.reduce(ring[redo], axis=-1)
    return m, n


def blend(personal: np.ndarray, n: np.ndarray, prior, weight_days: float) -> np.ndarray:
    """A home's own figure weighted by its days of history against the population prior."""
    w = n.astype(np.float32)
    p = np.where(np.isnan(personal), 0.0, personal)
    return ((w * p + weight_days * prior) / (w + weight_days)).astype(np.float32)


def population(values: np.ndarray, n: np.ndarray, min_days: int, default):
    """Median over homes with enough history; the built-in default while there are few."""
    ok = n >= min_days
    if ok.sum() >= 5:
        v = values[ok]
        # A median of an evenly spread sample of at most ~20,000 homes is as good a prior.
        return np.float32(median(v[:: max(1, len(v) // 20000)]))
    return np.float32(default)


def median(v: np.ndarray):
    """np.median of a 1-D array, without its generic machinery (called twice an hour)."""
    n = len(v)
    if np.isnan(v).any():
        return np.median(v)
    h = n // 2
    if n % 2:
        return np.partition(v, h)[h]
    p = np.partition(v, (h - 1, h))
    return (p[h - 1] + p[h]) / 2


def kth_largest(x: np.ndarray, k: int) -> np.ndarray:
    """The k-th largest value along the last axis ignoring NaN; 0 where fewer than k values."""
    s = np.where(np.isnan(x), -np.inf, x)
    s.sort(axis=-1)
    v = s[..., -k]
    return np.where(np.isfinite(v), v, 0).astype(np.float32)


def rows(mask: np.ndarray):
    """Indices where mask is set; the cheap test first, as most intervals raise nothing."""
    return np.flatnonzero(mask) if mask.any() else ()
