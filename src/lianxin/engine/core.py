"""The incremental engine: per-home state in dense numpy arrays, one interval at a time.

    engine = Engine(EngineConfig())           # tz: the deployment's zone (lianxin.meterdata)
    engine.register(homes)                    # household_id, interval_s, meter_kind, area
    engine.apply_settings(settings)           # optional: sensitivity, quiet hours, away periods
    engine.learn(kw, start)                   # optional warm-up: weeks of history at once
    findings = engine.step(readings, now=...) # any block of new readings; returns raised/resolved
    blob = engine.snapshot(); engine = Engine.restore(blob)

Rows are meters: a home's electricity meter is its primary row (keyed by its household_id); a
water or gas meter is another row pointing to it (`owner`), so several meters of one home make
one judgement about activity. All per-row state lives in `engine.a`, one named array each
(`engine.a.quiet_since`, first axis = row; names declared in the field specs, see
engine/state.py); the hot path is vectorised across rows and loops only over time.

Time: instants are int64 seconds since the epoch (UTC). A reading covers [ts, ts + interval) and
is processed at the tick `now = ts + interval`, when it is complete. Routines are learned in local
time (config.tz) when each local hour ends.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import BinaryIO
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from lianxin import meterdata
from lianxin.engine import learn as bulk
from lianxin.engine import routine
from lianxin.engine.config import SENSITIVITY, EngineConfig
from lianxin.engine.detectors import DETECTORS
from lianxin.engine.findings import Finding
from lianxin.engine.state import fields_class
from lianxin.engine.text import next_local_hour, utc

# The contract's vocabularies (lianxin.meterdata), under the names the engine has used.
METER_KINDS = meterdata.METER_KINDS
EVENTS = meterdata.ENGINE_EVENTS
EV = meterdata.ENGINE_EVENT_CODE

BASE_FIELDS = {
    "interval_s": (np.int32, (), 1800),
    "ih": (np.float32, (), 0.5),  # interval in hours
    "kind": (np.int8, (), 0),
    "owner": (np.int32, (), -1),  # primary row of the home
    "area": (np.int32, (), -1),
    "sens": (np.float32, (), 1.0),
    "quiet_mask": (np.int32, (), 0),  # bit h set: local hour h is a quiet hour
    "away_from": (np.int64, (), 0),
    "away_to": (np.int64, (), 0),
    "last_end": (np.int64, (), 0),  # end of the latest reading; 0 = none yet
    "quiet_since": (np.int64, (), 0),  # end of the latest activity (or start of data)
    "act_thr": (np.float32, (), np.nan),
    "zrun_cur": (np.float32, (), 0.0),  # current run of exact zeros, hours
    # The zero run going on was (partly) inside a grid outage of its area: not this home's own
    # (set by the power detector, cleared when the run ends).
    "zrun_outage": (np.bool_, (), False),
    # The resolution of the meter's readings (kWh) where they are register differences; 0 =
    # fine (an interval meter): see EngineConfig.no_power_min_draw_kw.
    "res_kwh": (np.float32, (), 0.0),
    "explained": (np.bool_, (), False),  # set per interval by detectors that explain silence
}


# The state's names, declared once in the field specs above (in this order).
Arrays = fields_class(
    "Arrays", [*BASE_FIELDS, *routine.fields(1), *(k for det in DETECTORS for k in det.FIELDS)]
)
# Per transformer area rather than per row.
AreaArrays = fields_class("AreaArrays", ["outage_since"])


@dataclass(slots=True)
class Tick:
    """The signals of one interval, shared by all detectors."""

    now: int
    hour: int  # local hour of the interval
    utc_offset: int  # seconds, local minus UTC, at this interval
    has: np.ndarray  # a reading ended now
    kw: np.ndarray  # its mean power (kW; m³/h for water/gas); NaN where no reading
    zero: np.ndarray  # exact zero on an electricity meter
    resumed: np.ndarray  # data came back after a gap
    resumed_from: np.ndarray  # last_end before the gap (valid where resumed)
    ev_rows: np.ndarray
    ev_codes: np.ndarray
    ev_ts: np.ndarray
    pay_rows: np.ndarray
    pay_amount: np.ndarray
    pay_balance: np.ndarray
    pay_ts: np.ndarray


# Day-end figures are prepared at most PREP_ROWS rows at a time, at the first (up to
# PREP_HOURS) hour ends of each local day (see Engine._prepare_day_end).
PREP_HOURS = 12
PREP_ROWS = 100_000


def _empty(dtype=np.int64):
    return np.zeros(0, dtype=dtype)


class Engine:
    def __init__(self, config: EngineConfig | None = None):
        self.cfg = config or EngineConfig()
        self.tz = ZoneInfo(self.cfg.tz)
        self.D = self.cfg.history_days
        self.spec = dict(BASE_FIELDS)
        self.spec.update(routine.fields(self.D))
        for det in DETECTORS:
            self.spec.update(det.FIELDS)
        self.ids: list[str] = []  # row key: household_id, or "household_id#water"
        self.households: list[str] = []
        self.index: dict[str, int] = {}
        self.area_names: list[str] = []
        self.area_index: dict[str, int] = {}
        self.a = Arrays()  # per-row arrays, by name: self.a.quiet_since
        for k in self.spec:
            self.a[k] = self._alloc(k, 0)
        # q_ring sorted, per hour: (24, D, rows), rows last so that keeping it sorted when one
        # slot changes is a few vector passes (routine.sorted_replace) instead of a sort of
        # every ring each hour. Derived from q_ring: rebuilt on restore, not snapshotted.
        self.q_sorted = np.full((24, self.D, 0), routine.Q_UNKNOWN, np.uint8)
        self.g = AreaArrays()
        self.g.outage_since = np.zeros(0, np.int64)
        self.now: int | None = None  # end of the latest interval processed
        self.hour_end: int | None = None  # end of the local hour being accumulated
        self.pop = {
            "quiet": routine.DEFAULT_QUIET_H.copy(),
            "high": np.full(24, routine.DEFAULT_HIGH_KW, np.float32),
            "standby": np.float32(routine.DEFAULT_STANDBY_KW),
        }
        # Pinned (pin_priors): the population priors stay as given instead of being learned
        # over the homes this engine holds, so that engines holding shards of the homes judge
        # each home exactly as one engine holding them all would (lianxin.engine.priors).
        self.priors_pinned = False
        self.late_readings = 0  # readings that ended before the engine's clock: not replayed
        self.extra: dict = {}  # the caller's figures saved with the state (see snapshot)
        self.settings_version = 0  # bumped by apply_settings (for figures derived from them)
        self._memo: dict = {}  # see memo()
        # Shortcuts for the common case of no prepaid data (derived from state on restore).
        self.tracks_balance = False
        self.any_cutoff = False
        self._derive()

    # ---- registry -------------------------------------------------------------------------

    def _alloc(self, name: str, n: int) -> np.ndarray:
        dtype, shape, fill = self.spec[name]
        if name in routine.ROWS_LAST:
            return np.moveaxis(np.full((*shape, n), fill, dtype=dtype), -1, 0)
        return np.full((n, *shape), fill, dtype=dtype)

    @property
    def n(self) -> int:
        return len(self.ids)

    def register(self, homes: pl.DataFrame) -> None:
        """Add meters: household_id; optional interval_s (default 1800), meter_kind,
        transformer_area and resolution_kwh (of register-difference readings; null = fine).

        Known rows are left as they are (their area and resolution are updated if given).
        """
        cols = homes.columns
        hid = homes["household_id"].cast(pl.Utf8).to_list()
        kinds = (
            homes["meter_kind"].to_list() if "meter_kind" in cols else ["electricity"] * len(hid)
        )
        ivs = homes["interval_s"].to_list() if "interval_s" in cols else [1800] * len(hid)
        areas = (
            homes["transformer_area"].to_list() if "transformer_area" in cols else [None] * len(hid)
        )
        res = homes["resolution_kwh"].to_list() if "resolution_kwh" in cols else [None] * len(hid)
        # electricity first, so a home's primary row exists before its other meters point to it
        order = sorted(range(len(hid)), key=lambda i: kinds[i] != "electricity")
        new_keys: dict[str, int] = {}  # key -> position among the new rows
        new_rows = []
        res_changed = False
        for i in order:
            h, k = hid[i], kinds[i] or "electricity"
            if k not in METER_KINDS:
                raise ValueError(f"household {h}: meter_kind {k!r} is not one of {METER_KINDS}")
            key = h if k == "electricity" else f"{h}#{k}"
            if key in self.index:
                if areas[i] is not None:
                    self.a.area[self.index[key]] = self._area(areas[i])
                if res[i] is not None and self.a.res_kwh[self.index[key]] != np.float32(res[i]):
                    self.a.res_kwh[self.index[key]] = res[i]
                    res_changed = True
                continue
            if key in new_keys:
                continue
            # A water or gas meter belongs to the home's electricity meter when it has one.
            owner = self.index.get(h, -1)
            if owner == -1 and h in new_keys:
                owner = self.n + new_keys[h]
            new_keys[key] = len(new_rows)
            new_rows.append(
                (h, METER_KINDS.index(k), int(ivs[i] or 1800), owner, areas[i], res[i] or 0.0)
            )
        if not new_keys:
            if res_changed:
                self._derive()
            return
        base = self.n
        m = len(new_keys)
        for name in self.spec:
            grown = self._alloc(name, base + m)
            grown[:base] = self.a[name]
            self.a[name] = grown
        fresh_q = np.full((24, self.D, m), routine.Q_UNKNOWN, np.uint8)  # as their empty q_ring
        self.q_sorted = np.concatenate([self.q_sorted, fresh_q], axis=2)
        keys = list(new_keys)
        self.ids.extend(keys)
        self.households.extend(row[0] for row in new_rows)
        self.index.update({key: base + j for j, key in enumerate(keys)})
        a = self.a
        a.kind[base:] = [row[1] for row in new_rows]
        a.interval_s[base:] = [row[2] for row in new_rows]
        owners = np.array([row[3] for row in new_rows], np.int64)
        a.owner[base:] = np.where(owners >= 0, owners, np.arange(base, base + m))
        for j, row in enumerate(new_rows):
            if row[4] is not None:
                a.area[base + j] = self._area(row[4])
        a.ih[base:] = a.interval_s[base:] / 3600.0
        a.res_kwh[base:] = [row[5] for row in new_rows]
        a.act_thr[base:] = self._activity_threshold(np.full(m, np.nan, np.float32))
        self._derive()
        self._idmap()  # built here, with the rows, rather than in the first step()

    def _derive(self) -> None:
        """Per-row constants the hot path would otherwise recompute every interval."""
        a, cfg = self.a, self.cfg
        self.elec = a.kind == 0
        self.all_elec = bool(self.elec.all())  # no water or gas meters: no per-kind choices
        self.primary = a.owner == np.arange(self.n)
        self.all_primary = bool(self.primary.all())  # no meter points to another row
        self.gap_s = np.maximum(cfg.data_gap_h * 3600, cfg.data_gap_intervals * a.interval_s)
        self.resume_s = a.interval_s + self.gap_s  # a reading this long after the last: a gap
        nslots = np.maximum(a.interval_s // 1800, 1).astype(np.uint64)
        self.slot_mask = (np.uint64(1) << nslots) - np.uint64(1)  # half hours one interval covers
        self.slot_shift = nslots
        self.one_slot = bool((nslots == 1).all())
        # The zero run (h) a coarse meter needs before its zeros say "no supply" (see power).
        coarse = a.res_kwh > 0
        self.zero_min_h = (
            (a.res_kwh / np.float32(cfg.no_power_min_draw_kw)).astype(np.float32)
            if coarse.any() else None
        )  # fmt: skip

    def _area(self, name) -> int:
        name = str(name)
        if name not in self.area_index:
            self.area_index[name] = len(self.area_names)
            self.area_names.append(name)
            self.g.outage_since = np.append(self.g.outage_since, np.int64(0))
        return self.area_index[name]

    def apply_settings(self, settings: pl.DataFrame) -> None:
        """Per-home settings: sensitivity (low/normal/high), quiet_start/quiet_end ("HH:MM",
        local), away_from/away_to (local datetimes). Unknown homes are an error.

        Away periods here are for an offline replay (`lianxin replay --settings`), which has no
        duty room. The live monitor does not pass them: there the alerts layer owns away periods
        (alerts.AwayPeriod: many per home, ended early, audited), and an inactivity finding
        inside one is kept as a silenced alert that comes back if the silence outlasts it."""
        self.settings_version += 1
        for row in settings.iter_rows(named=True):
            h = str(row["household_id"])
            if h not in self.index:
                raise ValueError(f"settings name household {h!r}, which has no readings")
            rows = [self.index[k] for k in (h, f"{h}#water", f"{h}#gas") if k in self.index]
            s = row.get("sensitivity")
            if s:
                if s not in SENSITIVITY:
                    raise ValueError(f"household {h}: sensitivity {s!r} is not low/normal/high")
                self.a.sens[rows] = SENSITIVITY[s]
            qs, qe = row.get("quiet_start"), row.get("quiet_end")
            if qs and qe:
                self.a.quiet_mask[rows] = _hour_mask(_hhmm(h, qs), _hhmm(h, qe))
            af, at = row.get("away_from"), row.get("away_to")
            if af and at:
                self.a.away_from[rows] = self._local_instant(af)
                self.a.away_to[rows] = self._local_instant(at)

    def pin_priors(self, quiet, high, standby) -> None:
        """Hold the population priors at these values (quiet: 24 hours, high: 24 kW, standby
        kW) from now on, learning none. Call it on a fresh engine, before register()."""
        self.pop = {
            "quiet": np.asarray(quiet, np.float32).copy(),
            "high": np.asarray(high, np.float32).copy(),
            "standby": np.float32(standby),
        }
        self.priors_pinned = True

    def set_time_zone(self, tz: str) -> None:
        """Judge local time in `tz` from now on (the deployment's zone changed): the learned
        hour slots stay where they are and relearn within history_days."""
        self.cfg = replace(self.cfg, tz=tz)
        self.tz = ZoneInfo(tz)

    def feedback(self, outcomes: pl.DataFrame) -> None:
        """What the duty room found for findings it worked: household_id, kind, started_at
        (the finding's, UTC-aware or epoch s), outcome (an alert outcome such as false_alarm,
        resident_fine, real_emergency). Detectors that learn from it adjust the home; the rest
        is ignored, as are homes the engine does not know."""
        if outcomes.height == 0:
            return
        known = outcomes.filter(pl.col("household_id").cast(pl.Utf8).is_in(self.ids))
        for det in DETECTORS:
            if not hasattr(det, "feedback"):
                continue
            mine = known.filter(pl.col("kind") == det.KIND)
            if mine.height:
                rows = np.array([self.index[h] for h in mine["household_id"].cast(pl.Utf8)])
                det.feedback(self, rows, self._epoch(mine["started_at"]), mine["outcome"].to_list())

    def memo(self, name: str, key: tuple, compute):
        """compute() kept under `name` until `key` changes: for figures the intervals need that
        rest only on state changing at hour ends or with settings (key: what they rest on)."""
        held = self._memo.get(name)
        if held is None or held[0] != key:
            self._memo[name] = held = (key, compute())
        return held[1]

    def _local_instant(self, value) -> int:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):  # a date: the whole local day
            value = datetime(value.year, value.month, value.day)
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz)
        return int(value.timestamp())

    def history_days(self, household_id: str) -> int:
        """Local days with data this engine has learned from, for the home's primary meter."""
        return int(self.a.days_seen[self.index[household_id]])

    def history(self) -> pl.DataFrame:
        """How much each home's routine rests on its own history (vs the population prior)."""
        prim = np.flatnonzero(self.primary)
        return pl.DataFrame(
            {
                "household_id": [self.households[r] for r in prim],
                "days": self.a.days_seen[prim].astype(np.int32),
                "standby_kw": self.a.standby[prim],
                "personal_share": (
                    self.a.quiet_n[prim].mean(axis=1)
                    / (self.a.quiet_n[prim].mean(axis=1) + self.cfg.prior_weight_days)
                ).astype(np.float32),
            }
        )

    # ---- the live entry point -----------------------------------------------------------

    def step(
        self,
        readings: pl.DataFrame,
        now: datetime | int | None = None,
        *,
        events: pl.DataFrame | None = None,
        payments: pl.DataFrame | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Finding]:
        """Feed a block of new readings (household_id, ts, the interval's quantity, optional
        meter_kind) and advance the clock to `now` (default: the end of the latest reading).
        ts: UTC-aware, epoch seconds, or naive = local time in the engine's zone (as in replay).
        The quantity column is `quantity` (kWh; m³ for water and gas) or `kwh` for electricity
        alone (lianxin.meterdata); each must be a finite number >= 0 (ValueError naming the row).
        Readings are processed interval by interval in time order, exactly as replay does.
        `progress(ticks done, ticks)` is called as it goes (a long block: a warm-up)."""
        rows, ends, kw = self._rows_of(readings)
        if now is None:
            now_s = int(ends.max()) if len(ends) else self.now
        else:
            now_s = int(now.timestamp()) if isinstance(now, datetime) else int(now)
        if now_s is None:
            return []
        ev = self._events_of(events)
        pay = self._payments_of(payments)
        late = ends <= (self.now or -1)
        self.late_readings += int(late.sum())
        # The usual block holds one interval (all readings end together): nothing to sort.
        one_end = len(ends) > 0 and ends.min() == ends.max()
        ticks = np.unique(np.concatenate([ends[:1] if one_end else ends, ev[2], pay[3], [now_s]]))
        ticks = ticks[(ticks > (self.now or -1)) & (ticks <= now_s)]
        if not one_end:
            order = np.argsort(ends, kind="stable")
            rows, ends, kw = rows[order], ends[order], kw[order]
        out: list[Finding] = []
        prev = None  # events and payments that arrive late still count, at the first tick
        for i, t in enumerate(ticks):
            if progress is not None and i % 96 == 0:
                progress(i, len(ticks))
            lo, hi = np.searchsorted(ends, t, "left"), np.searchsorted(ends, t, "right")
            has = np.zeros(self.n, bool)
            has[rows[lo:hi]] = True
            kwv = np.full(self.n, np.nan, np.float32)
            kwv[rows[lo:hi]] = kw[lo:hi]
            out += self.tick(int(t), has, kwv, _slice_t(ev, prev, t), _slice_t(pay, prev, t))
            prev = int(t)
        if progress is not None:
            progress(len(ticks), len(ticks))
        return out

    def learn(self, kw: np.ndarray, start: int, rows: np.ndarray | None = None) -> None:
        """Warm a new engine up on a block of history at once: kw is rows x intervals of kW
        (NaN = no reading) from `start`. Leaves the learned state feeding the block through
        tick would, without raising findings (see learn.py for what starts clear)."""
        bulk.learn(self, kw, start, rows)

    def learn_readings(self, readings: pl.DataFrame, end: int | None = None) -> int:
        """learn() from long readings (household_id, ts, kwh), as replay() reads them."""
        return bulk.learn_readings(self, readings, end)

    def _idmap(self) -> pl.DataFrame:
        """Row keys -> row numbers as a frame, extended by the rows added since it was built."""
        built = getattr(self, "_idmap_frame", None)
        have = 0 if built is None else built.height
        if built is None or have != self.n:
            more = pl.DataFrame(
                {"key": self.ids[have:], "row": np.arange(have, self.n, dtype=np.int64)},
                schema={"key": pl.Utf8, "row": pl.Int64},
            )
            self._idmap_frame = more if built is None else pl.concat([built, more], rechunk=True)
        return self._idmap_frame

    def _rows_of_keys(self, keys: pl.Series) -> np.ndarray:
        """Row numbers of row keys, -1 where not registered. A block that lists a stretch of
        the registry in its order, or the same keys as the previous block (a feed that sends
        its homes in a fixed order), needs no join."""
        registry = self._idmap()
        first = self.index.get(keys[0], -1)
        m = len(keys)
        if 0 <= first <= self.n - m and keys.equals(registry["key"].slice(first, m)):
            return np.arange(first, first + m)
        last = getattr(self, "_last_block", None)  # rows never move: its rows stay right
        if last is not None and keys.equals(last[0]):
            return last[1]
        rows = pl.DataFrame({"key": keys}).join(
            registry, on="key", how="left", maintain_order="left"
        )["row"]
        rows = rows.fill_null(-1).to_numpy()
        if rows.min() >= 0:
            self._last_block = (keys, rows)
        return rows

    def _rows_of(self, readings: pl.DataFrame):
        if readings is None or readings.height == 0:
            return _empty(np.intp), _empty(), _empty(np.float32)
        keys = readings["household_id"].cast(pl.Utf8)
        if "meter_kind" in readings.columns:
            mk = readings["meter_kind"].fill_null("electricity")
            keys = pl.select(
                pl.when(mk == "electricity").then(keys).otherwise(keys + "#" + mk)
            ).to_series()
        rows = self._rows_of_keys(keys)
        if rows.min() < 0:
            unknown = keys.filter(pl.Series(rows < 0)).unique(maintain_order=True).to_list()
            self.register(
                pl.DataFrame(
                    {
                        "household_id": [k.split("#")[0] for k in unknown],
                        "meter_kind": [
                            k.split("#")[1] if "#" in k else "electricity" for k in unknown
                        ],
                    }
                )
            )
            rows = self._rows_of_keys(keys)
        quantity = readings[meterdata.quantity_column(readings)].cast(pl.Float64).to_numpy()
        meterdata.check_engine_quantities(quantity)
        start = self._epoch(readings["ts"])
        ends = start + self.a.interval_s[rows]
        kw = (quantity / self.a.ih[rows]).astype(np.float32)
        return rows.astype(np.intp), ends, kw

    def _events_of(self, events):
        if events is None or events.height == 0:
            return _empty(np.intp), _empty(np.int8), _empty()
        rows = np.array([self._primary(h) for h in events["household_id"].cast(pl.Utf8)], np.intp)
        names = events["event"].to_list()
        bad = [e for e in set(names) if e not in EV]
        if bad:
            raise ValueError(f"unknown meter event {bad[0]!r} (known: {', '.join(EVENTS)})")
        codes = np.array([EV[e] for e in names], np.int8)
        return rows, codes, self._epoch(events["ts"])

    def _payments_of(self, payments):
        if payments is None or payments.height == 0:
            f = _empty(np.float64)
            return _empty(np.intp), f, f, _empty()
        rows = np.array([self._primary(h) for h in payments["household_id"].cast(pl.Utf8)], np.intp)
        amount = (
            payments["amount"].cast(pl.Float64).to_numpy()
            if "amount" in payments.columns
            else np.full(len(rows), np.nan)
        )
        balance = (
            payments["balance"].cast(pl.Float64).to_numpy()
            if "balance" in payments.columns
            else np.full(len(rows), np.nan)
        )
        return rows, amount, balance, self._epoch(payments["ts"])

    def _epoch(self, ts: pl.Series) -> np.ndarray:
        """Epoch seconds; naive times are local in the engine's zone (lianxin.meterdata)."""
        return meterdata.epoch_seconds(ts, self.cfg.tz).to_numpy().astype(np.int64)

    def _primary(self, household_id: str) -> int:
        if household_id not in self.index:
            self.register(pl.DataFrame({"household_id": [household_id]}))
        return self.index[household_id]

    # ---- one interval ---------------------------------------------------------------------

    def tick(self, now: int, has: np.ndarray, kw: np.ndarray, ev=None, pay=None) -> list[Finding]:
        """Process the readings that ended at `now` (has/kw indexed by row; kw float32 kW, NaN
        wherever has is False) and the events and payments since the previous tick. The one
        code path of replay and the live monitor."""
        kw = np.asarray(kw, np.float32)  # (no copy when it is float32 already)
        out: list[Finding] = []
        if self.hour_end is None:
            self.hour_end = next_local_hour(now - 1, self.tz)
        while now > self.hour_end:  # the readings of this tick belong to a later local hour
            out += self._finish_hour(self.hour_end)
            self.hour_end += 3600
        a = self.a
        local = datetime.fromtimestamp(now - 1, self.tz)
        ev = ev if ev is not None else (_empty(np.intp), _empty(np.int8), _empty())
        pay = (
            pay
            if pay is not None
            else (_empty(np.intp), _empty(np.float64), _empty(np.float64), _empty())
        )

        iv = a.interval_s
        last_end = a.last_end
        # Data starting again: after a gap (resumed), or a meter's first reading (last_end 0:
        # instants are epoch seconds, far beyond resume_s). Rare, so the two are told apart only
        # when there is one.
        restart = has & (now - last_end >= self.resume_s)
        any_restart = np.count_nonzero(restart) > 0
        if any_restart:
            resumed, resumed_from = restart & (last_end > 0), last_end.copy()
        else:
            resumed, resumed_from = restart, last_end
        np.copyto(last_end, now, where=has)  # (no boolean indexing: cheaper)

        # kw is NaN where there is no reading, and NaN compares false: no `has &` needed.
        elec = self.elec
        zero = kw <= 0 if self.all_elec else elec & (kw <= 0)
        zrun = a.zrun_cur + a.ih
        if any_restart:
            # Missing data is no evidence of zeros either: a zero run restarts where data
            # starts again (the one before the gap ended with it).
            zrun[restart] = a.ih[restart]
        zrun *= zero
        # A zero run enters the home's history once, at its whole length, on the day it ends
        # (a run of many days would otherwise fill many days of the ring: one long outage
        # must not teach that zero is normal; see _finish_day). A run going on is not history.
        # A run that was a grid outage's is not the home's: it is not recorded.
        ended = has & ~zero
        if any_restart:
            ended |= restart
        if np.count_nonzero(a.zrun_outage):
            own = ended & ~a.zrun_outage
            a.zrun_outage &= ~ended
        else:
            own = ended
        np.maximum(a.day_zrun, a.zrun_cur, out=a.day_zrun, where=own)
        np.copyto(a.zrun_cur, zrun, where=has)
        # any water or gas flow is use
        active = kw > (a.act_thr if self.all_elec else np.where(elec, a.act_thr, 0))
        own = a.owner
        qs = a.quiet_since
        # Missing data is no evidence of quiet: a spell restarts where data starts again.
        if any_restart:
            r = own[restart]
            qs[r] = np.maximum(qs[r], now - iv[restart])
        if self.all_primary:
            np.copyto(qs, now, where=active)
        elif np.count_nonzero(active):
            qs[own[active]] = now

        ih = a.ih
        # kw * ih where there is a reading, else 0: kw is NaN exactly there, and fmax drops NaN.
        add = kw * ih
        np.fmax(add, np.float32(0), out=add)
        cov = ih * has
        a.hour_kwh += add
        a.hour_cov += cov
        a.day_kwh += add
        a.day_cov += cov
        # Standby: the lowest non-zero interval of each day (a zero is an outage, not standby).
        # (fmin skips NaN: a masked ufunc call costs more than making the masked operand)
        np.fmin(a.day_min_kw, np.where(kw > 0, kw, np.float32(np.nan)), out=a.day_min_kw)
        a.explained[:] = False
        # Half-hour bits this interval covers (a 60-minute reading covers two).
        slot = (local.hour * 60 + local.minute) // 30
        if self.one_slot:  # every interval within one half hour
            bits = np.uint64(1 << slot)
        else:
            bits = self.slot_mask << np.uint64(slot + 1) >> self.slot_shift
        day = routine.local_day(local) % self.D
        seen, act = a.seen_bits[:, day], a.act_bits[:, day]  # views: updated in place
        # (bits times the flags: cheaper than a masked ufunc call)
        np.bitwise_or(seen, np.multiply(has, bits, dtype=np.uint64), out=seen)
        np.bitwise_or(act, np.multiply(active, bits, dtype=np.uint64), out=act)

        offset = int(local.utcoffset().total_seconds())
        t = Tick(now, local.hour, offset, has, kw, zero, resumed, resumed_from, *ev, *pay)
        self.now = now
        for det in DETECTORS:
            out += det.tick(self, t)
        return out

    def _finish_hour(self, end: int) -> list[Finding]:
        """Learn from the local hour that ends at `end`; at local midnight, from the day."""
        a, cfg, D = self.a, self.cfg, self.D
        local = datetime.fromtimestamp(end - 1, self.tz)
        h, d = local.hour, routine.local_day(local) % D
        good = (a.hour_cov >= 0.5) & ~a.hour_anom
        mean = np.where(good, a.hour_kwh / np.maximum(a.hour_cov, 1e-6), np.nan)
        # The learned figures change only by the one ring slot replaced here, so counts (and the
        # maximum) are updated from the old and new slot values instead of rescanning the ring.
        old_kw = a.kw_ring[:, h, d].copy()
        a.kw_ring[:, h, d] = mean
        quiet_q = np.rint((end - a.quiet_since) / 900.0)  # quarter hours, clipped:
        np.minimum(np.maximum(quiet_q, 0, out=quiet_q), routine.Q_MAX, out=quiet_q)
        known = good & self.primary & (a.quiet_since > 0) & (a.last_end >= end - 3600)
        new_q = np.where(known, quiet_q, routine.Q_UNKNOWN).astype(np.uint8)
        old_q = a.q_ring[:, h, d].copy()
        qn = a.quiet_n[:, h] - (old_q != routine.Q_UNKNOWN) + known
        a.q_ring[:, h, d] = new_q
        routine.sorted_replace(self.q_sorted[h], old_q, new_q)

        qv = routine.sorted_quantile(self.q_sorted[h], qn, cfg.inactivity_quantile)
        qv = qv / 4.0
        if cfg.high_load_quantile >= 1.0:
            hv, hn = routine.ring_max_update(
                a.kw_ring[:, h, :], a.high_max[:, h], a.high_n[:, h], old_kw, mean
            )
            a.high_max[:, h], a.high_n[:, h] = hv, hn
        else:
            hv, hn = routine.ring_quantile(a.kw_ring[:, h, :], cfg.high_load_quantile)
        self.set_hour_slot(h, qv, qn, hv, hn)

        # Until a home has a whole day behind it, its lowest hour so far is its standby.
        fresh = np.isnan(a.standby) & np.isfinite(a.day_min_kw)
        if np.count_nonzero(fresh):
            a.act_thr[fresh] = self._activity_threshold(a.day_min_kw[fresh])
        a.hour_kwh[:] = 0
        a.hour_cov[:] = 0
        a.hour_anom[:] = False
        self.prepare_share(h, routine.local_day(local))
        out: list[Finding] = []
        if local.hour == 23:
            out += self._finish_day(end, routine.local_day(local))
        return out

    def set_hour_slot(self, h: int, qv, qn, hv, hn) -> None:
        """Hour slot h's learned figures from the home's own quiet-spell quantile qv (h) and
        usual high hv (kW) with the days behind them: the population priors, then each home's
        blend of its own figure and the prior."""
        a, w = self.a, self.cfg.prior_weight_days
        if not self.priors_pinned:
            self.pop["quiet"][h] = routine.population(qv, qn, 14, routine.DEFAULT_QUIET_H[h])
            self.pop["high"][h] = routine.population(hv, hn, 14, routine.DEFAULT_HIGH_KW)
        a.quiet_thr[:, h] = routine.blend(qv, qn, self.pop["quiet"][h], w)
        a.quiet_n[:, h] = qn
        a.high_kw[:, h] = routine.blend(hv, hn, self.pop["high"][h], w)

    def prepare_share(self, hour: int, day: int) -> None:
        """At the end of local hour `hour` of local day `day`: prepare its share of the rows for
        the day end, if it is one of the day's first hours (at most PREP_ROWS rows an hour)."""
        shares = min(PREP_HOURS, -(-self.n // PREP_ROWS))
        if hour < shares:
            rows = slice(hour * self.n // shares, (hour + 1) * self.n // shares)
            self._prepare_day_end(rows, day)

    def _prepare_day_end(self, rows, day: int) -> None:
        """Compute ahead, for some rows, what the end of local day `day` needs that rests only
        on days already complete (the ring slots it does not replace), so that the day end
        itself needs no sort of every home's rings. The day end prepares any row not done."""
        a, d = self.a, day % self.D
        a.sb_known[rows], a.sb_lo[rows], a.sb_hi[rows] = routine.median_prepare(a.sb_ring[rows], d)
        for det in DETECTORS:
            if hasattr(det, "prepare"):
                det.prepare(self, rows, d)
        a.prep_day[rows] = day

    def _finish_day(self, end: int, day: int) -> list[Finding]:
        a, D = self.a, self.D
        d = day % D
        late = np.flatnonzero(a.prep_day != day)  # new rows, a restart, a day begun late
        if len(late):
            self._prepare_day_end(late, day)
        complete = a.day_cov >= 0.9 * 24
        a.tot_ring[:, d] = np.where(complete, a.day_kwh, np.nan)
        zrun = np.where(a.day_cov > 0, a.day_zrun, np.nan)
        a.zrun_pos += (zrun > 0).view(np.uint8)
        a.zrun_pos -= (a.zrun_ring[:, d] > 0).view(np.uint8)
        a.zrun_ring[:, d] = zrun
        dmin = a.day_min_kw
        sb_day = np.where(np.isfinite(dmin), dmin, np.nan)
        a.sb_ring[:, d] = sb_day
        a.days_seen += (a.day_cov > 0).astype(np.int16)
        sb, sbn = routine.median_complete(a.sb_known, a.sb_lo, a.sb_hi, sb_day)
        a.standby = np.where(sbn > 0, sb, np.nan).astype(np.float32)
        if not self.priors_pinned:
            self.pop["standby"] = routine.population(sb, sbn, 14, routine.DEFAULT_STANDBY_KW)
        a.act_thr = self._activity_threshold(a.standby)
        # The third-longest zero run ended on a day of the ring: one or two outages, however
        # long, do not teach "zero is normal", a home whose meter often reads zero does. Runs
        # are never negative, so it is 0 unless the ring holds at least three runs longer than
        # zero: only those rows need a sort.
        a.zero_thr_h = np.zeros(self.n, np.float32)
        often = np.flatnonzero(a.zrun_pos >= 3)
        if len(often):
            a.zero_thr_h[often] = routine.kth_largest(a.zrun_ring[often], 3)
        out: list[Finding] = []
        for det in DETECTORS:
            if hasattr(det, "day"):
                out += det.day(self, end, d)
        a.day_kwh[:] = 0
        a.day_cov[:] = 0
        a.day_min_kw[:] = np.inf
        a.day_zrun[:] = 0
        a.act_bits[:, (day + 1) % D] = 0  # the ring slot the next day will fill
        a.seen_bits[:, (day + 1) % D] = 0
        return out

    def _activity_threshold(self, standby: np.ndarray) -> np.ndarray:
        sb = np.where(np.isnan(standby), self.pop["standby"], standby)
        return (sb * self.cfg.activity_factor + self.cfg.activity_margin_kw).astype(np.float32)

    # ---- findings -------------------------------------------------------------------------

    def finding(self, kind, severity, row, started, en, zh, evidence, event="raised") -> Finding:
        evidence = {k: _plain(v) for k, v in evidence.items()}
        evidence.setdefault("history_days", int(self.a.days_seen[self.a.owner[row]]))
        if event not in _EVENTS:
            raise ValueError(f"finding event must be 'raised' or 'resolved', not {event!r}")
        return Finding.about_home(
            kind,
            severity,
            utc(started),
            utc(self.now),
            en,
            zh,
            self.households[row],
            evidence,
            event,
        )

    def finding_worded_later(self, kind, severity, row, started, words, history_days) -> Finding:
        """As finding(..., event="raised"), the wording and evidence made by `words()` ->
        (en, zh, evidence) when first read (Finding.worded_later): for a detector's burst.
        history_days: the home's days seen now (rows_history_days(rows), for all at once)."""

        def worded():
            en, zh, evidence = words()
            evidence = {k: _plain(v) for k, v in evidence.items()}
            evidence.setdefault("history_days", history_days)
            return en, zh, evidence

        return Finding.worded_later(
            kind, severity, utc(started), utc(self.now), self.households[row], worded, "raised"
        )

    def rows_history_days(self, rows) -> list[int]:
        """The days seen of each row's home (as finding() puts in the evidence)."""
        return self.a.days_seen[self.a.owner[rows]].tolist()

    def resolved(self, f_kind, row, started, en, zh, evidence=None) -> Finding:
        return self.finding(f_kind, "info", row, started, en, zh, evidence or {}, "resolved")

    # ---- restart --------------------------------------------------------------------------

    def snapshot(self, out: BinaryIO | None = None, extra: dict | None = None) -> bytes | None:
        """The whole state (numpy .npz), for a restart without relearning: as bytes, or written
        to the file `out` (returns None), array by array in bounded buffers, so writing it
        needs no second copy of the state in memory. `extra`: the caller's own JSON-able
        figures, given back by restore() as `engine.extra` (the monitor's journal position)."""
        meta = {
            "config": asdict(self.cfg),
            "ids": self.ids,
            "households": self.households,
            "areas": self.area_names,
            "now": self.now,
            "hour_end": self.hour_end,
            "late_readings": self.late_readings,
            "pop_standby": float(self.pop["standby"]),
            "extra": extra or {},
            "priors_pinned": self.priors_pinned,
        }
        arrays = {f"a_{k}": v for k, v in self.a.items()}
        arrays.update({f"g_{k}": v for k, v in self.g.items()})
        arrays["pop_quiet"] = self.pop["quiet"]
        arrays["pop_high"] = self.pop["high"]
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        if out is not None:
            np.savez(out, **arrays)
            return None
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def restore(cls, blob: bytes | str | os.PathLike) -> Engine:
        """The engine a snapshot() saved: from its bytes, or from the file it was written to
        (read array by array, without the whole file in memory at once)."""
        z = np.load(io.BytesIO(blob) if isinstance(blob, bytes | bytearray) else blob)
        meta = json.loads(z["meta"].tobytes().decode())
        eng = cls(EngineConfig(**meta["config"]))
        eng.ids, eng.households, eng.area_names = meta["ids"], meta["households"], meta["areas"]
        eng.index = {k: i for i, k in enumerate(eng.ids)}
        eng.area_index = {k: i for i, k in enumerate(eng.area_names)}
        eng.now, eng.hour_end = meta["now"], meta["hour_end"]
        eng.late_readings = meta["late_readings"]
        eng.extra = meta.get("extra", {})
        eng.pop = {
            "quiet": z["pop_quiet"],
            "high": z["pop_high"],
            "standby": np.float32(meta["pop_standby"]),
        }
        eng.priors_pinned = bool(meta.get("priors_pinned", False))
        n = len(eng.ids)
        for k in eng.spec:
            # A snapshot from before a field existed: its fill (prep_day -1 = not prepared).
            saved = z[f"a_{k}"] if f"a_{k}" in z.files else None
            if saved is None or k in routine.ROWS_LAST:  # (saved in row-first order)
                eng.a[k] = eng._alloc(k, n)
                if saved is not None:
                    eng.a[k][...] = saved
            else:
                eng.a[k] = saved
        if "a_high_max" not in z.files:  # a snapshot from before these were kept
            hv, hn = routine.ring_quantile(eng.a.kw_ring, 1.0)
            eng.a.high_max[...], eng.a.high_n[...] = hv, hn  # in place: rows last
        if "a_zrun_pos" not in z.files:
            eng.a.zrun_pos = np.count_nonzero(eng.a.zrun_ring > 0, axis=1).astype(np.uint8)
        eng.sort_quiet_rings()
        for k in eng.g:
            eng.g[k] = z[f"g_{k}"]
        z.close()
        eng._derive()
        eng.tracks_balance = bool((~np.isnan(eng.a.bal)).any())
        eng.any_cutoff = bool((eng.a.cut_open > 0).any() | eng.a.relay_open.any())
        return eng

    def sort_quiet_rings(self) -> None:
        """Rebuild q_sorted from q_ring (after a restore or a bulk learn)."""
        self.q_sorted = np.empty((24, self.D, self.n), np.uint8)
        for h in range(24):  # uint16: numpy sorts it much faster than uint8 along a short axis
            self.q_sorted[h] = np.sort(self.a.q_ring[:, h, :].astype(np.uint16), axis=-1).T

    def state_bytes(self) -> int:
        arrays = [*self.a.values(), *self.g.values(), self.q_sorted]
        return sum(v.nbytes for v in arrays)


def _slice_t(arrs, prev, t):
    ts = arrs[-1]
    if len(ts) == 0:
        return arrs
    m = (ts > (prev if prev is not None else -(2**62))) & (ts <= t)
    return tuple(x[m] for x in arrs)


_EVENTS = frozenset({"raised", "resolved"})
_AS_IS = frozenset({str, int, bool, type(None)})
_FLOATS = frozenset({float, np.float64, np.float32})
_INTS = frozenset({np.int64, np.int32, np.int16, np.int8, np.uint8, np.uint16, np.uint32})


def _plain(v):
    # Exact types first: a replay writes tens of thousands of findings of ~10 figures each.
    t = type(v)
    if t in _AS_IS:
        return v
    if t in _FLOATS:
        v = float(v)
        return None if v != v else round(v, 3)
    if t in _INTS:
        return int(v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 3)
    return v


def _hhmm(h: str, value) -> int:
    text = str(value)
    try:
        hh, mm = text.split(":")[:2]
        return int(hh) * 60 + int(mm)
    except ValueError as exc:
        raise ValueError(f"household {h}: quiet hours time {text!r} is not HH:MM") from exc


def _hour_mask(start_min: int, end_min: int) -> int:
    """Local hours (bits) that lie inside the quiet window, wrapping past midnight."""
    mask = 0
    for hr in range(24):
        m = hr * 60
        inside = (
            start_min <= m < end_min if start_min <= end_min else (m >= start_min or m < end_min)
        )
        if inside:
            mask |= 1 << hr
    return mask
