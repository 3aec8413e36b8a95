"""The demo town's live feed: real household curves, at the wall clock's pace, with incidents.

Each demo household replays one home of the committed real sample (LCL London, half-hourly),
rotated by whole weeks so that homes sharing a curve do not move in step, and mapped from its
own wall-clock time to the same wall-clock time in the deployment's time zone (a Londoner who
wakes at 07:00 wakes at 07:00 in Meishan). Half-hours are split into two equal quarter-hours,
since the demo meters report 96 points a day. Incidents are injected into the live feed only,
never into the history the engine warms up on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

STEP = timedelta(minutes=15)
SRC_STEP_MIN = 30
# Homes with long runs of exact zeros in the sample would raise no_power all day: not replayed.
EXCLUDED = {"MAC000041"}


@dataclass
class Incident:
    kind: str  # no_power, high_load, inactivity, data_gap, grid_outage, prepaid_cutoff
    rows: np.ndarray  # indexes into the feed's homes
    start: datetime
    end: datetime
    label: str

    def active(self, t: datetime) -> bool:
        return self.start <= t < self.end


class DemoFeed:
    def __init__(
        self,
        sample: Path,
        meters: list[str],
        areas: list[str],
        care_rows: list[int],
        tz: str,
        seed: int = 2021,
    ):
        df = pl.read_parquet(sample).filter(~pl.col("household_id").is_in(list(EXCLUDED)))
        ids = sorted(df["household_id"].unique().to_list())
        t0 = df["ts"].min()
        # The sample starts on a Monday at 00:00; one slot per half-hour over whole weeks.
        slots = int((df["ts"].max() - t0).total_seconds() // (SRC_STEP_MIN * 60)) + 1
        self.period = (slots // (7 * 48)) * 7 * 48
        self.src = np.full((len(ids), self.period), np.nan, np.float32)
        index = {h: i for i, h in enumerate(ids)}
        slot = ((df["ts"] - t0).dt.total_seconds() // (SRC_STEP_MIN * 60)).to_numpy().astype(int)
        keep = slot < self.period
        rows = np.array([index[h] for h in df["household_id"].to_list()])[keep]
        self.src[rows, slot[keep]] = df["kwh"].to_numpy()[keep]
        self.anchor = datetime(2013, 1, 7)  # a Monday, as the sample's first day
        self.meters = meters
        self.areas = np.array(areas)
        self.n = len(meters)
        self.curve = np.arange(self.n) % len(ids)
        self.rotation = (np.arange(self.n) // len(ids)) * 7 * 48
        self.tz = ZoneInfo(tz)
        self.care_rows = care_rows or list(range(self.n))
        self.rng = random.Random(seed)
        self.incidents: list[Incident] = []
        # Standby: each home's low level, what a quiet home still draws (fridge, router).
        self.standby = np.nanpercentile(self.src, 5, axis=1)[self.curve] / 2

    def values(self, t: datetime) -> np.ndarray:
        """kWh of each home in the quarter-hour starting at t (UTC), NaN for no data."""
        local = t.astimezone(self.tz).replace(tzinfo=None)
        half = int((local - self.anchor).total_seconds() // (SRC_STEP_MIN * 60))
        idx = (half + self.rotation) % self.period
        return self.src[self.curve, idx] / 2

    def frame(self, start: datetime, end: datetime, with_incidents: bool = True) -> pl.DataFrame:
        """Readings for the quarter-hours in [start, end), ready for ReadingsStore.write."""
        times, values = [], []
        t = start
        while t < end:
            v = self.values(t).astype(np.float64)
            if with_incidents:
                v = self._apply(t, v)
            times.append(np.full(self.n, int(t.timestamp() * 1e6), np.int64))
            values.append(v)
            t += STEP
        if not times:
            return pl.DataFrame()
        v = np.concatenate(values)
        df = pl.DataFrame(
            {
                "meter": np.tile(np.array(self.meters, dtype=object), len(times)).tolist(),
                "ts": pl.Series(np.concatenate(times)).cast(pl.Datetime("us", "UTC")),
                "value": v,
                "unit": "kWh",
            }
        )
        return df.filter(pl.col("value").is_not_nan())

    def _apply(self, t: datetime, v: np.ndarray) -> np.ndarray:
        for inc in self.incidents:
            if not inc.active(t):
                continue
            if inc.kind in ("no_power", "grid_outage", "prepaid_cutoff"):
                v[inc.rows] = 0.0
            elif inc.kind == "high_load":
                v[inc.rows] += 2.0 * STEP.total_seconds() / 3600  # a 2 kW heater left on
            elif inc.kind == "inactivity":
                v[inc.rows] = np.round(self.standby[inc.rows], 3)
            elif inc.kind == "data_gap":
                v[inc.rows] = np.nan
        return v

    def events(self, start: datetime, end: datetime) -> pl.DataFrame | None:
        """Meter events the incidents produce in [start, end): a prepaid cut-off opens the relay."""
        rows = []
        for inc in self.incidents:
            # The relay opens a little after the quarter-hour begins: an event stamped exactly
            # on the engine's clock would belong to the interval it has already closed.
            at = inc.start + timedelta(minutes=2)
            if inc.kind == "prepaid_cutoff" and start <= at < end:
                rows += [(self.meters[r], at, "relay_open", "余额不足") for r in inc.rows]
        if not rows:
            return None
        meter, ts, event, detail = zip(*rows, strict=True)
        return pl.DataFrame(
            {"meter": list(meter), "ts": list(ts), "event": list(event), "detail": list(detail)},
            schema_overrides={"ts": pl.Datetime("us", "UTC")},
        )

    def schedule(self, at: datetime) -> Incident:
        """Start a random incident at `at` (the start of the next quarter-hour)."""
        kind = self.rng.choices(
            ["no_power", "high_load", "inactivity", "data_gap", "grid_outage", "prepaid_cutoff"],
            weights=[30, 20, 20, 12, 10, 8],
        )[0]
        busy = {int(r) for inc in self.incidents if inc.end > at for r in inc.rows}
        free = [r for r in self.care_rows if r not in busy] or self.care_rows
        row = self.rng.choice(free)
        hours = {
            "no_power": self.rng.uniform(2, 4),
            "high_load": self.rng.uniform(4, 6),
            "inactivity": self.rng.uniform(14, 20),
            "data_gap": self.rng.uniform(6, 10),
            "grid_outage": self.rng.uniform(1, 2),
            "prepaid_cutoff": self.rng.uniform(3, 5),
        }[kind]
        if kind == "grid_outage":
            rows = np.flatnonzero(self.areas == self.areas[row])
            label = f"grid outage of transformer area {self.areas[row]} ({len(rows)} homes)"
        else:
            rows = np.array([row])
            label = f"{kind} at meter {self.meters[row]}"
        inc = Incident(kind, rows, at, at + timedelta(hours=round(hours * 4) / 4), label)
        self.incidents.append(inc)
        self.incidents = [i for i in self.incidents if i.end > at - timedelta(days=1)]
        return inc


def floor_step(t: datetime) -> datetime:
    t = t.astimezone(UTC)
    return t - timedelta(minutes=t.minute % 15, seconds=t.second, microseconds=t.microsecond)
