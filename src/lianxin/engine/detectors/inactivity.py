"""inactivity: the home's routine did not happen.

The engine learns, for every local hour, how long this home has usually been quiet (no meter
above standby) by the end of that hour: after a night's sleep a long spell is normal at 06:00,
by 09:00 it is not. Inactivity is raised when the current quiet spell is longer than the
`inactivity_quantile` of those spells at this hour plus slack (both scaled by the home's
sensitivity), never below the floor, always by the cap — and only if on (nearly) every past day
the home was busy in the same clock window, so quiet then is unprecedented for it. Alarms that
cleared by themselves soon after make the home's next one ask for a busier window. Water and
gas use counts as activity.
Silence that something else explains (no data, no power, a prepaid cut-off), away periods and
quiet hours raise nothing.
"""

from __future__ import annotations

import functools

import numpy as np

from lianxin.engine import routine
from lianxin.engine.text import clock, hours, utc, when, window

KIND = "inactivity"
# Reads the shared `explained` flag, which data_gap, payment and power set this interval.
AFTER: tuple[str, ...] = (
    "data_gap",
    "payment",
    "power",
)  # detectors whose this-interval writes it reads

FIELDS = {
    "in_open": (np.int64, (), 0),  # open inactivity: its started_at (last activity)
    "in_raised": (np.int64, (), 0),  # when the open inactivity was raised
    "in_recent": (np.float32, (), 0.0),  # alarms that cleared by themselves lately (decays)
    "in_counted": (np.int64, (), 0),  # started_at of the latest alarm counted in in_recent
    # Per half hour, on how many past days the home had data and was active, as one key
    # (days with data * 256 + days active) into _LOG_QUIET: they change only when the local day
    # does, so they are counted once a day, when first needed.
    "in_cnt_day": (np.int32, (), -1),  # the local day they were counted for
    "in_cnt_key": (np.uint16, (48,), 0),
}
# What the duty room found when it called (alert outcomes): the routine is looser than learned.
NOT_AN_EMERGENCY = {"false_alarm", "resident_fine"}


def threshold_h(eng, hour: int, weekend: bool = False) -> np.ndarray:
    """The quiet spell (h) over which each home may be inactive at this hour (of a weekend day
    or a weekday: used only with `inactivity_day_type`). Its inputs change only at hour ends
    and with settings, so it is computed once for each of those."""
    typed = _typed(eng)
    key = (hour, typed and weekend, eng.hour_end, eng.settings_version, eng.n)
    return eng.memo("inactivity_thr", key, lambda: _threshold_h(eng, hour, typed and weekend))


def _typed(eng) -> bool:
    """Whether quiet spells are judged by day type: the ring must hold whole weeks, so that
    each of its slots always holds the same weekday."""
    return eng.cfg.inactivity_day_type and eng.D % 7 == 0


def _threshold_h(eng, hour: int, weekend: bool) -> np.ndarray:
    a, cfg = eng.a, eng.cfg
    s = a.sens
    if _typed(eng):
        # The home's own quantile over past days of this type only, blended with the prior as
        # the all-days one is (computed here, once an hour, rather than kept sorted per type).
        slots = np.flatnonzero(_weekend(np.arange(eng.D)) == weekend)
        q = a.q_ring[:, hour, slots]
        n = np.count_nonzero(q != routine.Q_UNKNOWN, axis=-1)
        qv = routine.ring_quantile_codes(q, n, cfg.inactivity_quantile) / 4.0
        own = routine.blend(qv, n, eng.pop["quiet"][hour], cfg.prior_weight_days)
    else:
        own = a.quiet_thr[:, hour]
    thr = own + cfg.inactivity_slack_h * s
    floor = cfg.inactivity_floor_h * s
    return np.minimum(np.maximum(thr, floor), cfg.inactivity_cap_h * s)


def tick(eng, t) -> list:
    a, cfg, now = eng.a, eng.cfg, t.now
    out = []
    qs = a.quiet_since
    # Resolve first: activity (on any meter of the home) ends the spell.
    back = (a.in_open > 0) & (qs > a.in_open)
    for r in routine.rows(back):
        start = int(a.in_open[r])
        w_en, w_zh = when(int(qs[r]), now, eng.tz)
        out.append(
            eng.resolved(
                KIND, r, start, f"Activity again at {w_en}.", f"{w_zh}已恢复用电活动。",
                {"activity_at": utc(int(qs[r])).isoformat()},
            )
        )  # fmt: skip
        # Activity soon after the alarm: this home's routine is looser than learned.
        if now - a.in_raised[r] <= cfg.inactivity_self_clear_h * 3600:
            _count(a, r, start)
        a.in_open[r] = 0
    elapsed = (now - qs) / 3600.0
    # Compare with the spells this home showed at the last hour boundary (the start of this
    # hour): the end-of-hour figure would already include the activity that usually follows.
    # (that boundary is in yesterday at midnight)
    weekend = _typed(eng) and bool(_weekend((now + t.utc_offset - 1) // 86400 - (t.hour == 0)))
    thr = threshold_h(eng, (t.hour - 1) % 24, weekend)
    # Only fresh data speaks: silence from a meter that is not reporting is no evidence. The
    # safety floor looks at every spell past the fixed rule's length, whatever the routine says.
    rule = _rule_h(eng)
    if cfg.inactivity_anchor:
        early = cfg.inactivity_anchor_min_h * a.sens
        cand = elapsed >= np.minimum(np.minimum(thr, rule), early)
    else:
        cand = elapsed >= _first_bar(eng, thr, rule)
    if cfg.inactivity_low_use:
        cand |= elapsed >= _low_use_h(eng)
    cand &= t.has
    if not eng.all_primary:
        cand &= eng.primary
    # qs > 0 and no open inactivity (a spell of 0 is no spell, an open one was raised): after
    # the resolving above, an open one has in_open >= qs, so both are in_open < qs.
    cand &= a.in_open < qs
    np.greater(cand, a.explained, out=cand)  # cand & ~explained, in one call
    rows = cand.nonzero()[0]
    if len(rows):
        quiet_hours, away = _settings_in_use(eng)
        if quiet_hours:
            rows = rows[((a.quiet_mask[rows] >> t.hour) & 1) == 0]
        if away:
            rows = rows[~((a.away_from[rows] <= now) & (now < a.away_to[rows]))]
    if len(rows):
        allowed, cap_h, log10_limit = _limits(eng)
        # The home's alarm budget: each alarm of about the last month that cleared by itself
        # moves its threshold later, so a home over budget stops crying wolf (a real incident
        # does not clear by itself and moves nothing).
        budget_h = cfg.inactivity_h_per_alarm * a.in_recent[rows]
        el = elapsed[rows]  # (indexed once: a replay pays per numpy call)
        late = el > thr[rows] + budget_h
        keep = np.zeros(len(rows), bool)
        anchored = np.zeros(len(rows), bool)
        # (each step below only when its option is on: a replay pays per numpy call)
        if cfg.inactivity_anchor:
            # The expected first activity: the home is always active again within so many
            # hours of this clock time, and that time (plus a margin and the alarm budget) has
            # passed.
            soon = el >= early[rows]
            if np.count_nonzero(soon):
                an_h = first_activity_h(eng, t, rows[soon])
                margin = cfg.inactivity_anchor_margin_h * a.sens[rows[soon]] + budget_h[soon]
                anchored[soon] = elapsed[rows[soon]] > an_h + margin  # NaN (no anchor): never
            if np.count_nonzero(anchored):
                # ... and quiet that long is as unlikely, slot by slot, as the routine asks.
                _nv, _nq, log10_p, _busy = quiet_windows(eng, t, rows[anchored])
                anchored[anchored] = log10_p < log10_limit[rows[anchored]]
            keep |= anchored
            late &= ~anchored
        odds = np.zeros(len(rows), bool)
        if np.count_nonzero(late):
            lr = rows[late]
            n_valid, n_quiet, log10_p, _busy = quiet_windows(eng, t, lr)
            unlikely = log10_p < log10_limit[lr]
            quiet_ok = allowed[lr]
            if cfg.inactivity_quiet_share:
                quiet_ok = quiet_ok + _budget_days(cfg, n_valid)
            keep[late] = (n_valid < cfg.inactivity_min_days) | ((n_quiet <= quiet_ok) & unlikely)
            if cfg.inactivity_odds_log10_p > 0:
                # Past its threshold, a spell the clock window lets pass (too many loose past
                # days: a holiday, a few lie-ins) is still raised if, half hour by half hour,
                # such quiet is all but impossible for this home.
                odds[late] = (
                    ~keep[late]
                    & (n_valid >= cfg.inactivity_odds_min_days)
                    & (log10_p < -cfg.inactivity_odds_log10_p / a.sens[lr])
                )
                keep |= odds
        if cfg.inactivity_low_use:
            keep |= _low_use(eng, t, rows, ~keep & (el >= _low_use_h(eng)[rows]))
        # The safety floor: past the fixed rule's length and longer than any quiet spell the
        # home had in its history, or past the hard cap, it is raised however loose the routine.
        longest = np.full(len(rows), np.nan, np.float32)
        past = ~keep & (el >= rule[rows])  # the rule fires at 12 h sharp
        if np.count_nonzero(past):
            longest[past] = _longest(eng, t, rows[past])
        # (half an hour past the longest, so a home's usual long night is not the trigger; a
        # home with less than inactivity_min_days of history has only the cap)
        known = a.days_seen[rows] >= cfg.inactivity_min_days
        floor = past & ((known & (el > longest + 0.5)) | (el > cap_h[rows]))
        keep |= floor
        if np.count_nonzero(keep):
            fire = rows[keep]
            n_valid, n_quiet, log10_p, busy = quiet_windows(eng, t, fire)
            out += _raise(
                eng, t, fire, elapsed[fire], thr[fire], n_valid, n_quiet, log10_p, busy,
                np.where(floor, longest, np.nan)[keep], anchored[keep], odds[keep],
            )  # fmt: skip
            a.in_open[fire] = qs[fire]
            a.in_raised[fire] = now
    # No learning is withheld here: a false alarm must not stop the home teaching the engine
    # that such quiet is normal (the quantiles shrug off one real incident).
    return out


def first_activity_h(eng, t, rows: np.ndarray) -> np.ndarray:
    """For each row, the hours after its current spell began (the end of its last active half
    hour, by the clock) within which the home was active again on all but
    `inactivity_anchor_outliers` of its past days with data ("on 25 of the last 26 days this
    home was in use again by 07:30"); NaN where fewer than `inactivity_anchor_min_days` days
    tell. Worked out once per spell: the spell's start does not move. Derived from the
    activity rings, so kept beside the state rather than in it (a restart works it out again)."""
    qs_for, hours, days = _anchors(eng)
    qs = eng.a.quiet_since[rows]
    stale = qs_for[rows] != qs
    if np.count_nonzero(stale):
        fix = rows[stale]
        hours[fix], days[fix] = _first_activity(eng, t, fix)
        qs_for[fix] = qs[stale]
    return hours[rows]


def _anchors(eng):
    """Per row: the quiet_since its anchor was worked out for, the anchor (h), its days."""
    n = eng.n
    return eng.memo(
        "inactivity_anchor",
        (n,),
        lambda: (np.zeros(n, np.int64), np.full(n, np.nan, np.float32), np.zeros(n, np.int16)),
    )


def _first_activity(eng, t, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, cfg = eng.a, eng.cfg
    off = t.utc_offset
    today = (t.now + off - 1) // 86400
    # The spell's last active half hour, by the clock (quiet_since is the end of a reading).
    s0 = (((a.quiet_since[rows] + off - 1) % 86400) // 1800).astype(np.uint64)
    # Past days whose next day is complete too: 2 .. D-1 days ago (days first, rows last).
    at = _past_days(today, eng.D, eng.n)[1:] + rows
    nxt = _past_days(today, eng.D, eng.n)[:-1] + rows  # the day after each
    act, seen = a.act_bits.T.reshape(-1), a.seen_bits.T.reshape(-1)
    act_a, act_n, seen_a, seen_n = act.take(at), act.take(nxt), seen.take(at), seen.take(nxt)
    # Spells that began up to `inactivity_anchor_pool` half hours either side count too, their
    # waits shifted to this start (a routine's clock wobbles; 26 days alone are too few to say
    # how long the longest usual wait is).
    waits, valids = [], []
    w = cfg.inactivity_anchor_pool
    for shift in range(-w, w + 1):
        s = np.clip(s0.astype(np.int64) + shift, 0, 47)
        gap, ok = _waits(act_a, act_n, seen_a, seen_n, s.astype(np.uint64))
        waits.append(gap + (s - s0.astype(np.int64)))
        valids.append(ok)
        if shift == 0:
            valid = ok
    if cfg.inactivity_anchor_day_type:
        # Weekdays learn from weekdays, weekends from weekends (a lie-in is a weekend habit).
        start_day = (a.quiet_since[rows] + off - 1) // 86400
        past = today - np.arange(2, eng.D)
        same = _weekend(past)[:, None] == _weekend(start_day)[None, :]
        valid &= same
    else:
        same = True
    n = valid.sum(axis=0)
    gaps = np.concatenate(
        [np.where(ok & same, np.minimum(g, _NONE), -1) for g, ok in zip(waits, valids, strict=True)]
    ).astype(np.float32)
    gaps.sort(axis=0)
    k = cfg.inactivity_anchor_outliers + 1
    hours = gaps[-k] / 2.0  # the k-th longest wait (h) for the first activity
    hours = np.where((n >= cfg.inactivity_anchor_min_days) & (gaps[-k] < _NONE), hours, np.nan)
    return hours.astype(np.float32), n.astype(np.int16)


def _waits(act_a, act_n, seen_a, seen_n, s0):
    """Half hours from slot s0 of each past day to its first activity after s0 (in that day or
    the next), and whether every half hour up to it (or, with none, every one) had data."""
    one = np.uint64(1)
    rest = ~np.uint64(0) >> np.uint64(16) >> (s0 + one) << (s0 + one)  # slots after s0, that day
    after = 47 - s0.astype(np.int64)  # half hours left in that day after s0
    gap_act = _first_set(act_a & rest, act_n, after)
    gap_unseen = _first_set(~seen_a & rest, ~seen_n & ~(~np.uint64(0) << np.uint64(48)), after)
    return gap_act, (gap_unseen > gap_act) | (gap_unseen == _NONE)


_NONE = 96  # no activity within the rest of the day and the next one


def _weekend(day):
    """Local day numbers (days since 1970-01-01, a Thursday) that are a Saturday or Sunday."""
    return (np.asarray(day) + 3) % 7 >= 5


def _first_set(day: np.ndarray, next_day: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Half hours from the start slot to the first set bit: in `day` (bits above the start,
    already masked) or else in `next_day` (`after` = the day's slots after the start); _NONE
    where neither has one."""

    def low(w):  # index of the lowest set bit (w != 0): a power of two is exact in float64
        return np.log2((w & (~w + np.uint64(1))).astype(np.float64)).astype(np.int64)

    s0 = 47 - after
    out = np.full(day.shape, _NONE, np.int64)
    d, nd = day != 0, (day == 0) & (next_day != 0)
    with np.errstate(divide="ignore"):
        out = np.where(d, low(np.where(d, day, np.uint64(1))) - s0, out)
        out = np.where(nd, after + 1 + low(np.where(nd, next_day, np.uint64(1))), out)
    return out


def _low_use_h(eng) -> np.ndarray:
    return eng.memo(
        "inactivity_low_use_h",
        (eng.settings_version, eng.n),
        lambda: (eng.cfg.inactivity_low_use_h * eng.a.sens).astype(np.float32),
    )


def _low_use(eng, t, rows: np.ndarray, maybe: np.ndarray) -> np.ndarray:
    """Of `rows` where `maybe`: whether the spell drew less, hour by hour, than the home did in
    the same clock hours on all but inactivity_low_use_days past days, and the clock window says
    the home is usually busy by now (as the routine path asks)."""
    cfg = eng.cfg
    out = np.zeros(len(rows), bool)
    at = np.flatnonzero(maybe)
    if not len(at):
        return out
    r = rows[at]
    level, n_hours = spell_level(eng, t, r)
    n_low, n_days = low_days(eng, t, r, level * 1.1 + 0.02)
    ok = (n_hours >= 2) & (n_days >= 7) & (n_low <= cfg.inactivity_low_use_days)
    if np.count_nonzero(ok):
        allowed, _cap, log10_limit = _limits(eng)
        w = r[ok]
        n_valid, n_quiet, log10_p, _busy = quiet_windows(eng, t, w)
        ok[ok] = (
            (n_valid >= cfg.inactivity_min_days)
            & (n_quiet <= allowed[w])
            & (log10_p < log10_limit[w])
        )
    out[at] = ok
    return out


def spell_level(eng, t, rows: np.ndarray, most: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the highest hourly mean (kW) of the local hours wholly inside its current
    quiet spell (the last `most` complete hours and the hour in progress), and how many of
    those hours had data."""
    a = eng.a
    ends = eng.hour_end - 3600 * np.arange(1, most + 1)  # complete hours, newest first
    loc = ends + t.utc_offset - 1
    h, d = (loc // 3600) % 24, (loc // 86400) % eng.D
    inside = (ends - 3600)[None, :] >= a.quiet_since[rows][:, None]
    kw = np.where(inside, a.kw_ring[rows[:, None], h[None, :], d[None, :]], np.nan)
    cur_in = (eng.hour_end - 3600 >= a.quiet_since[rows]) & (a.hour_cov[rows] > 0)
    cur = np.where(cur_in, a.hour_kwh[rows] / np.maximum(a.hour_cov[rows], 1e-6), np.nan)
    both = np.concatenate([kw, cur[:, None]], axis=1)
    with np.errstate(all="ignore"):
        level = np.fmax.reduce(both, axis=1)
    return level.astype(np.float32), np.count_nonzero(~np.isnan(both), axis=1)


def low_days(eng, t, rows: np.ndarray, level: np.ndarray, most: int = 24):
    """For each row: on how many past days (with data in all the same clock hours: the
    complete hours of the current spell, at most `most`) the home's highest hourly mean in
    those hours was at most `level`, and how many past days had data in all of them."""
    a = eng.a
    ends = eng.hour_end - 3600 * np.arange(1, most + 1)
    loc = ends + t.utc_offset - 1
    h, d = (loc // 3600) % 24, loc // 86400
    inside = (ends - 3600)[None, :] >= a.quiet_since[rows][:, None]  # (rows, hours)
    back = np.arange(1, eng.D - 1)  # (the ring slot D - 1 days back is today's)
    dd = (d[None, :] - back[:, None]) % eng.D  # (past days, hours)
    kw = a.kw_ring[rows[:, None, None], h[None, None, :], dd[None, :, :]]
    use = inside[:, None, :]
    known = np.where(use, ~np.isnan(kw), True).all(axis=2) & inside.any(axis=1)[:, None]
    with np.errstate(all="ignore"):
        most_kw = np.fmax.reduce(np.where(use, kw, np.nan), axis=2)
    low = known & (most_kw <= level[:, None])
    return low.sum(axis=1), known.sum(axis=1)


def _first_bar(eng, thr: np.ndarray, rule: np.ndarray) -> np.ndarray:
    """The spell (h) from which a home is looked at: the lower of its threshold and the fixed
    rule's, kept while both are (they change only at hour ends and with settings)."""
    held = eng._memo.get("inactivity_bar")
    if held is None or held[0] is not thr or held[1] is not rule:
        held = eng._memo["inactivity_bar"] = (thr, rule, np.minimum(thr, rule))
    return held[2]


def _rule_h(eng) -> np.ndarray:
    """Per row, the fixed rule's quiet spell (h), later at low sensitivity: the safety floor's
    first bar (it changes only with settings)."""
    return eng.memo(
        "inactivity_rule",
        (eng.settings_version, eng.n),
        # high sensitivity speaks sooner through the routine; it does not lower this bar
        lambda: (eng.cfg.inactivity_rule_h * np.maximum(eng.a.sens, 1)).astype(np.float32),
    )


def _longest(eng, t, rows: np.ndarray) -> np.ndarray:
    """longest_spell_h, kept per row while its spell (quiet_since) and the local day (and UTC
    offset) last. It reads the quiet-spell ring up to the hour ends before the spell began;
    the ring changes only at hour ends, and one inside the spell writes a slot of today after
    quiet_since, which it leaves out, so within a day only a new spell changes it (a home away
    for days is looked at once a day and spell, not at every interval)."""
    off = t.utc_offset
    held, qs_for = eng.memo(
        "inactivity_longest",
        ((t.now + off - 1) // 86400, off, eng.n),
        lambda: (np.full(eng.n, np.nan, np.float32), np.zeros(eng.n, np.int64)),
    )
    qs = eng.a.quiet_since[rows]
    # (a row not worked out yet today has qs_for 0, and a candidate's spell began after 0)
    stale = qs_for[rows] != qs
    if np.count_nonzero(stale):
        need = rows[stale]
        held[need] = longest_spell_h(eng, t, need)
        qs_for[need] = qs[stale]
    return held[rows]


def longest_spell_h(eng, t, rows: np.ndarray) -> np.ndarray:
    """For each row, the longest quiet spell (h) its learned history shows before the current
    one began: the most of its quiet-spell ring, leaving out the hour ends since quiet_since
    (they measure the current spell itself) and today's slots not yet written (D days old)."""
    off = t.utc_offset
    ends = _ring_hour_ends((t.now + off - 1) // 86400, eng.D)
    q = eng.a.q_ring[rows]  # (rows, 24, D)
    before = ends[None] <= (eng.a.quiet_since[rows] + off)[:, None, None]
    q = np.where(before & (q != routine.Q_UNKNOWN), q, 0)
    return (q.max(axis=(1, 2)) / 4.0).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _ring_hour_ends(today: int, days: int) -> np.ndarray:
    """The hour ends (local seconds, hours x ring slots) of the local day each slot of a
    ring of `days` holds on local day `today` (one table a day, not one per call)."""
    slot = np.arange(days)
    day = today - (today - slot) % days  # the local day each ring slot holds
    return (day[None, :] * 24 + np.arange(24)[:, None] + 1) * 3600


def _budget_days(cfg, n_valid: np.ndarray) -> np.ndarray:
    """How many more of its past days (of today's type) with data the home may have been quiet
    through the same clock window: its alarm budget, a share of the days compared, so a window
    judged on 7 Sundays allows fewer than one judged on 20 weekdays."""
    return np.floor(cfg.inactivity_quiet_share * n_valid).astype(np.int64)


def _limits(eng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, from its sensitivity: how many quiet past days are allowed, the cap (h) and
    how unlikely (log10) the quiet must be. They change only with settings."""
    cfg, sens = eng.cfg, eng.a.sens
    return eng.memo(
        "inactivity_limits",
        (eng.settings_version, eng.n),
        lambda: (
            np.where(sens < 1, 1, 0) + cfg.inactivity_quiet_days,
            cfg.inactivity_cap_h * sens,
            -cfg.inactivity_log10_p / sens,
        ),
    )


def _settings_in_use(eng) -> tuple[bool, bool]:
    """Whether any home has quiet hours, or an away period (they change only with settings)."""
    a = eng.a
    return eng.memo(
        "inactivity_settings",
        (eng.settings_version, eng.n),
        lambda: (bool(np.count_nonzero(a.quiet_mask)), bool(np.count_nonzero(a.away_to))),
    )


def feedback(eng, rows: np.ndarray, started: np.ndarray, outcomes: list[str]) -> None:
    """The duty room's outcome of an alarm (raised at `started`): one that was no emergency
    counts like an alarm that cleared by itself (once, even if it did both)."""
    for r, s, outcome in zip(rows, started, outcomes, strict=True):
        if outcome in NOT_AN_EMERGENCY:
            _count(eng.a, int(r), int(s))


def _count(a, r: int, started: int) -> None:
    if a.in_counted[r] != started:
        a.in_recent[r] += 1
        a.in_counted[r] = started


def day(eng, end: int, d: int) -> list:
    eng.a.in_recent *= np.float32(1 - 1 / 28)
    return []


def quiet_windows(eng, t, rows):
    """_quiet_windows, kept for the rest of the interval: the rows that fire are asked again
    after the same rows were judged (nothing they rest on changes in between), and at a
    thousand homes numpy's cost per call is what a replay pays."""
    held = eng.memo("inactivity_windows", (t.now, eng.n), dict)
    before = held.get("rows")
    if before is not None and len(rows) and len(before):
        at = np.minimum(before.searchsorted(rows), len(before) - 1)
        if not np.count_nonzero(before[at] != rows):
            n_valid, n_quiet, log10_p, busy = held["figures"]
            return n_valid[at], n_quiet[at], log10_p[at], busy[at]
    figures = _quiet_windows(eng, t, rows)
    held["rows"], held["figures"] = rows, figures
    return figures


def _quiet_windows(eng, t, rows):
    """For each row: on how many past days its data covered the local clock window of the
    current quiet spell (at most the last 24 h), on how many of those it was not busy in it
    (active in fewer than `busy` half hours of it), how unlikely the quiet is slot by slot, and
    `busy` itself. Windows crossing midnight compare pairs of consecutive days. The rows are
    candidates: their spell began before now (quiet_since < t.now).

    Called for every candidate home at every interval, on a few dozen homes at a time: numpy's
    cost per call is what counts, so the window's masks come from tables indexed by its last
    and first half hour, and one take reads both days of every pair.
    """
    a, cfg = eng.a, eng.cfg
    off = t.utc_offset
    end = t.now + off  # local seconds
    today = (end - 1) // 86400
    s1 = ((end - 1) % 86400) // 1800
    # The window's first half hour, counted from yesterday's first (1..95: within 24 h).
    start = np.maximum(a.quiet_since[rows], t.now - 86400 + 1800)
    first = (start + off) // 1800 - (today - 1) * 48
    m_today = _M_TODAY[s1].take(first)
    m_prev = _M_PREV.take(first)
    # Yesterday and the days before it, days first: day k (1 .. D-2 days ago) pairs with
    # index k - 1 (that day) and index k (the day before it) along the days axis. The day
    # rings are kept rows last.
    at = _past_days(today, eng.D, eng.n) + rows
    flat_act, flat_seen = _flat_bits(eng)
    act, seen = flat_act.take(at), flat_seen.take(at)
    unseen = ~seen
    valid = ((unseen[:-1] & m_today) | (unseen[1:] & m_prev)) == 0
    same = _same_day_type(today, eng.D) if cfg.inactivity_day_type else None
    if same is not None:
        # Weekdays are compared with weekdays, weekends with weekends: a Sunday lie-in is no
        # reason to wait on a Tuesday morning, nor a busy Tuesday a reason to alarm on Sunday.
        # A home with too few such days yet (a new one, a second weekend) uses all of them.
        typed = valid & same[:, None]
        enough = typed.sum(axis=0) >= cfg.inactivity_min_days
        valid = np.where(enough, typed, valid)
    busy = np.ceil(
        cfg.inactivity_busy_slots + cfg.inactivity_busy_slots_per_alarm * a.in_recent[rows]
    ).astype(np.int64)
    n_on = np.bitwise_count(act[:-1] & m_today) + np.bitwise_count(act[1:] & m_prev)
    quiet = valid & (n_on < busy)
    # How unlikely is so much quiet, slot by slot? log10 of the product over the window's
    # half hours of (1 - this home's share of days active in that half hour).
    stale = a.in_cnt_day[rows] != today
    if np.count_nonzero(stale):
        fix = rows[stale]
        if same is None and eng.n < COUNT_TABLE_BELOW:
            a.in_cnt_key[fix] = _day_keys(eng, today)[fix]
        else:
            past_seen, past_act = seen[:-1, stale], act[:-1, stale]  # past days only
            if same is not None and np.count_nonzero(same) >= cfg.inactivity_min_days:
                past_seen, past_act = past_seen[same], past_act[same]
            n_seen, n_act = _slot_counts(past_seen, past_act)
            a.in_cnt_key[fix] = n_seen.astype(np.uint16) * 256 + n_act
        a.in_cnt_day[fix] = today
    log_quiet = _LOG_QUIET.take(a.in_cnt_key[rows])
    log10_p = (log_quiet * _INSIDE[s1].take(first, axis=0)).sum(axis=1)
    return valid.sum(axis=0), quiet.sum(axis=0), log10_p, busy


def _tables():
    one = np.uint64(1)
    slots = np.arange(48)
    upto = (one << (slots + 1).astype(np.uint64)) - one  # slots 0..s
    full = ~np.uint64(0) >> np.uint64(16)  # 48 slots
    from_ = full & ~((one << slots.astype(np.uint64)) - one)  # slots s..47
    # By the window's last half hour s1 (today) and its first, counted from yesterday's first
    # (0..95; from 48 on, today): the half hours it covers today and yesterday, and as a row
    # of 48 flags by clock slot.
    first = np.arange(96)
    today_start = first >= 48
    s0 = first % 48
    m_today = np.where(today_start[None, :], upto[:, None] & from_[s0][None, :], upto[:, None])
    m_prev = np.where(today_start, np.uint64(0), from_[s0])
    s1, s0_ = slots[:, None, None], s0[None, :, None]
    at = slots[None, None, :]
    inside = np.where(
        today_start[None, :, None], (at >= s0_) & (at <= s1), (at >= s0_) | (at <= s1)
    )
    # [days with data, days active] -> log10(1 - share of days active), the share kept < 0.98
    n = np.arange(256, dtype=np.uint8)
    share = np.minimum((n[None, :] + 0.5) / (n[:, None] + 1.0), 0.98)
    return m_today, m_prev, inside, np.log10(1 - share).ravel()


_M_TODAY, _M_PREV, _INSIDE, _LOG_QUIET = _tables()


@functools.lru_cache(maxsize=4)
def _same_day_type(today: int, days: int) -> np.ndarray:
    """Which of the past days 1 .. days - 2 ago (quiet_windows' day pairs, by their later
    day) are of today's type, weekday or weekend."""
    return _weekend(today - np.arange(1, days - 1)) == _weekend(today)


@functools.lru_cache(maxsize=4)
def _past_days(today: int, days: int, rows: int) -> np.ndarray:
    """Where the ring slots of yesterday and the days before it (back to days - 1 days ago)
    start in a day ring of `rows` rows kept rows last, as a column."""
    return ((today - np.arange(1, days)) % days)[:, None] * rows


def _flat_bits(eng) -> tuple[np.ndarray, np.ndarray]:
    """The activity and data day rings (rows last) as flat views, for one take of many
    (row, day) words: made again only when the rings are."""
    a = eng.a
    held = eng._memo.get("inactivity_flat_bits")
    if held is None or held[0] is not a.act_bits or held[1] is not a.seen_bits:
        flat = (a.act_bits.T.reshape(-1), a.seen_bits.T.reshape(-1))
        held = eng._memo["inactivity_flat_bits"] = (a.act_bits, a.seen_bits, flat)
    return held[2]


# Below this many rows, the day counts of every row (quiet_windows' in_cnt_key) are kept in a
# table beside the state, brought forward once a day by the day that came into the count and
# the one that left it (a few numpy calls over all rows), and a row's counts are copied from
# it when first needed that day: a replay of a thousand homes asks for some new row at nearly
# every interval, and counting it there cost a dozen numpy calls each time. The counts are the
# same either way. Above it, counting only the rows asked for costs less than the table.
COUNT_TABLE_BELOW = 4096


def _day_keys(eng, today: int) -> np.ndarray:
    """Every row's in_cnt_key for local day `today` (rows x 48, uint16): over days 1 .. D-2
    ago, days with data x 256 + days active, half hour by half hour. Past days' bits do not
    change: Engine.tick writes today's, learn() only warms an engine that has not ticked, and
    new rows (register) change n, which starts the table again."""
    n, D, a = eng.n, eng.D, eng.a
    held = eng._memo.get("inactivity_day_keys")
    if held is not None and held[0] == (n, today):
        return held[1]
    if held is not None and held[0] == (n, today - 1):
        keys = held[1]
        keys += _day_key(a, (today - 1) % D)  # yesterday comes in
        # D - 1 days ago leaves the count (its ring slot is cleared only at today's end)
        keys -= _day_key(a, (today - D + 1) % D)
    else:
        past = (today - np.arange(1, D - 1)) % D
        n_seen, n_act = _slot_counts(a.seen_bits[:, past].T, a.act_bits[:, past].T)
        keys = n_seen.astype(np.uint16) * 256 + n_act
    eng._memo["inactivity_day_keys"] = ((n, today), keys)
    return keys


def _day_key(a, slot: int) -> np.ndarray:
    """One day's contribution to the day counts' keys: 256 where a half hour had data, plus 1
    where it was active (rows x 48, uint16)."""
    words = np.stack([a.seen_bits[:, slot], a.act_bits[:, slot]])  # little-endian words
    bits = np.unpackbits(words.view(np.uint8).reshape(2, -1, 8), axis=-1, bitorder="little")
    return bits[0, :, :48].astype(np.uint16) * 256 + bits[1, :, :48]


# Homes at and above which the day counts are counted bit-sliced: its fixed cost (a few
# numpy calls per day, ~0.3 ms) is more than unpacking the bits of a few thousand homes; a
# replay asks for a handful of homes each interval, a million-home monitor for tens of
# thousands at a day's first interval. (Measured equal near 4 k homes x 27 days.)
BIT_SLICED_FROM = 4096


def _slot_counts(seen: np.ndarray, act: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, on how many of the days (days x rows words) each of the 48 half-hour bits is
    set, for both arrays (uint8, rows x 48)."""
    if seen.shape[1] >= BIT_SLICED_FROM:
        return _bit_counts(seen), _bit_counts(act)
    # Days first, so that adding up the days adds whole rows.
    words = np.empty((len(seen), 2, seen.shape[1]), np.uint64)
    words[:, 0], words[:, 1] = seen, act
    bits = np.unpackbits(words.view(np.uint8), axis=-1, bitorder="little")
    counts = np.add.reduce(bits, axis=0, dtype=np.uint8).reshape(2, seen.shape[1], 64)
    return counts[0, :, :48], counts[1, :, :48]


def _bit_counts(words: np.ndarray) -> np.ndarray:
    """Per column of `words` (days x rows), on how many days each of its 48 low bits is set.
    Counted bit-sliced: each bit position of a row gets a binary counter, held as one word per
    binary digit, and a day is added to all of a row's counters at once by a ripple carry of
    whole-word operations; only the few digit words are unpacked at the end. (Unpacking every
    day's bits cost a third of a second at a day's first interval at a million homes, when the
    counts of tens of thousands of homes are due.)"""
    days, n = words.shape
    digits = np.zeros((max(days, 1).bit_length(), n), np.uint64)
    carry, t = np.empty(n, np.uint64), np.empty(n, np.uint64)
    for d in range(days):
        carry[:] = words[d]
        for k in range((d + 1).bit_length()):  # a count of d + 1 days fits in these digits
            np.bitwise_and(digits[k], carry, out=t)
            digits[k] ^= carry
            carry, t = t, carry
    # Bits 0..47 of each digit word (its low six bytes: the words are little-endian, as
    # unpacking them anywhere here assumes), each count's digits put together in its byte.
    low = digits.view(np.uint8).reshape(len(digits), n, 8)[:, :, :6]
    counts = np.unpackbits(low[0], axis=-1, bitorder="little")  # (rows, 48)
    for k in range(1, len(digits)):
        bits = np.unpackbits(low[k], axis=-1, bitorder="little")
        bits <<= np.uint8(k)
        counts |= bits
    return counts


def _raise(eng, t, rows, elapsed, thr, n_valid, n_quiet, log10_p, busy, longest, anchored, odds):
    """The findings of the rows that fire (arrays, one entry per row). Figures are taken out of
    numpy as Python values a column at a time: a warm-up's first step raises tens of thousands
    of these, and a numpy scalar per figure and finding costs more than the wording."""
    a, cfg, tz, now = eng.a, eng.cfg, eng.tz, t.now
    # (the rows are homes' primary meters: their days seen are their homes' history_days)
    seen = a.days_seen[rows].tolist()
    cols = [
        rows.tolist(), a.quiet_since[rows].tolist(), elapsed.tolist(), thr.tolist(),
        n_valid.tolist(), n_quiet.tolist(), log10_p.tolist(), busy.tolist(), longest.tolist(),
        anchored.tolist(), odds.tolist(), seen, a.sens[rows].tolist(),
    ]  # fmt: skip
    if np.count_nonzero(anchored):
        _qs_for, an_hours, an_days = _anchors(eng)
        cols += [an_hours[rows].tolist(), an_days[rows].tolist()]
    else:
        cols += [[None] * len(rows)] * 2
    # Worded when first read (most of a burst is about homes whose wording nobody reads):
    # from these values only, taken now.
    shared = (
        now, tz, clock(now, tz), cfg.inactivity_min_days, cfg.inactivity_anchor_outliers,
        cfg.inactivity_cap_h, eng.D,
    )  # fmt: skip
    words = functools.partial(functools.partial, _words, shared)
    return [
        eng.finding_worded_later(KIND, "warning", row[0], row[1], words(row), days)
        for row, days in zip(zip(*cols, strict=True), seen, strict=True)
    ]


def _words(shared, row) -> tuple[str, str, dict]:
    """The wording and evidence of one raised inactivity finding (a row of _raise's columns)."""
    now, tz, at, min_days, outliers, cap_h, D = shared
    _r, start, el, th, nv, nq, lp, b, lg, an, od, seen, sens, an_h, n_an = row
    win_start = max(start, now - 86400 + 1800)  # the clock window: at most the last 24 h
    w_en, w_zh = when(start, now, tz)
    e_en, e_zh = hours(el)
    win_from = clock(win_start, tz)
    en = f"No activity since {w_en} ({e_en})."
    zh = f"自{w_zh}起无用电活动（{e_zh}）。"
    known_longest = lg == lg  # not NaN
    if an:
        by = clock(start + int(an_h * 3600), tz)
        active = n_an - outliers
        quiet_at = clock(start, tz)
        en += (
            f" On {active} of the last {n_an} days this home was in use again by {by} after "
            f"being quiet at {quiet_at}."
        )
        zh += f"过去{n_an}天中有{active}天该户在{quiet_at}之后至{by}前已恢复用电。"
    elif od:
        span_en, span_zh = window(win_start, now, tz)
        k = int(-lp)
        en += (
            f" Judged half hour by half hour against its last {nv} days, quiet {span_en} "
            f"is this unlikely for this home: about 1 in 10^{k}."
        )
        zh += f"按过去{nv}天逐半小时的用电规律，{span_zh}持续无活动的可能性约为10^{k}分之一。"
    elif known_longest and el > lg + 0.5 and seen >= min_days:
        l_en, l_zh = hours(lg)
        d = min(seen, D)
        en += f" In the last {d} days this home was never quiet for longer than {l_en}."
        zh += f"过去{d}天中该户无活动从未超过{l_zh}。"
    elif known_longest:
        c_en, c_zh = hours(cap_h * sens)
        en += f" A quiet spell over {c_en} is always reported."
        zh += f"超过{c_zh}无活动一律上报。"
    elif nv >= min_days:
        active = nv - nq
        b_en, b_zh = hours(b / 2)
        span_en, span_zh = window(win_start, now, tz)
        en += (
            f" On {active} of the last {nv} days this home was in use for at least {b_en} "
            f"{span_en}."
        )
        zh += f"过去{nv}天中有{active}天{span_zh}用电活动累计至少{b_zh}。"
    else:
        u_en, u_zh = hours(th)
        en += (
            f" This home is new ({seen} days of history); for a typical "
            f"home a quiet spell over {u_en} at this time is unusual."
        )
        zh += f"该户为新用户（{seen}天历史）；一般家庭此时超过{u_zh}无活动属异常。"
    evidence = {"last_activity": utc(start).isoformat(), "quiet_hours": el,
         "threshold_hours": th, "days_compared": nv,
         "days_active_in_window": nv - nq, "busy_hours": b / 2,
         "window": f"{win_from}-{at}", "log10_chance": lp,
         "longest_quiet_hours": lg if known_longest else None}  # fmt: skip
    if an:
        evidence["expected_activity_within_hours"] = an_h
    return en, zh, evidence
