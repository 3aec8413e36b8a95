"""Population priors learned once across all homes, then pinned: for replays split into shards.

The engine blends each home's own learned figures (usual quiet spell and high load per hour,
standby) with population priors: medians over the homes it holds with at least 14 days behind
a figure. An engine holding one shard of the homes would learn other priors than one engine
holding them all, and so judge the same home differently. So a sharded replay learns the priors
once, over every home, and pins them in every shard's engine (Engine.pin_priors):

    f = figures(engine)                  # per engine (shard): each row's figures, no findings
    p = combine([f1, f2, ...])           # once, over all of them
    engine.pin_priors(*p.values())       # in every engine, before it registers homes

Pinned priors do not follow the population during the replay (the unpinned engine relearns
them at every hour end); they are learned from a learning window (learn_priors) and kept in
each engine's snapshot, so a replay continued from snapshots uses the same ones.

Which homes count: at most SAMPLE homes, chosen by a hash of their key, so the choice is the same
however the homes are split or ordered (the unpinned engine takes every k-th row instead).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from lianxin.engine import routine
from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.inputs import epoch_seconds

MIN_DAYS = 14  # as Engine.set_hour_slot: a home's figure counts with this many days behind it
SAMPLE = 20_000  # homes whose figures make the medians, at most (as routine.population)


@dataclass(frozen=True)
class Priors:
    quiet: tuple[float, ...]  # 24 local hours: usual longest quiet spell, hours
    high: tuple[float, ...]  # 24 local hours: usual high load, kW
    standby: float  # kW

    @classmethod
    def default(cls) -> Priors:
        return cls(
            tuple(float(x) for x in routine.DEFAULT_QUIET_H),
            (float(np.float32(routine.DEFAULT_HIGH_KW)),) * 24,
            float(np.float32(routine.DEFAULT_STANDBY_KW)),
        )

    def values(self) -> tuple[np.ndarray, np.ndarray, np.float32]:
        return (
            np.array(self.quiet, np.float32),
            np.array(self.high, np.float32),
            np.float32(self.standby),
        )

    def to_json(self) -> str:
        # float32 values held as float64: exact both ways.
        return json.dumps({"quiet": self.quiet, "high": self.high, "standby": self.standby})

    @classmethod
    def from_json(cls, text: str) -> Priors:
        d = json.loads(text)
        q, h = d["quiet"], d["high"]
        if len(q) != 24 or len(h) != 24:
            raise ValueError("priors: quiet and high need 24 values each (one per local hour)")
        f32 = [float(np.float32(x)) for x in (*q, *h, d["standby"])]
        return cls(tuple(f32[:24]), tuple(f32[24:48]), f32[48])


FIGURE_COLUMNS = ("key", "sample", "qv", "qn", "hv", "hn", "sb", "sbn")


def figures(eng: Engine) -> pl.DataFrame:
    """Each row's figures the priors are medians of, as Engine.set_hour_slot and _finish_day
    compute them from its state: key (row key), sample (hash bucket, see combine), qv, qn, hv,
    hn (lists of 24), sb, sbn."""
    a, cfg = eng.a, eng.cfg
    n = eng.n
    qv = np.empty((n, 24), np.float32)
    for h in range(24):
        q = routine.sorted_quantile(eng.q_sorted[h], a.quiet_n[:, h], cfg.inactivity_quantile)
        qv[:, h] = q
    qv /= 4.0
    if cfg.high_load_quantile >= 1.0:
        hv, hn = np.asarray(a.high_max, np.float32), np.asarray(a.high_n)
    else:
        hv, hn = routine.ring_quantile(a.kw_ring, cfg.high_load_quantile)
    sbn = np.count_nonzero(~np.isnan(a.sb_ring), axis=1)
    return pl.DataFrame(
        {
            "key": eng.ids,
            "sample": [zlib.crc32(k.encode()) for k in eng.ids],
            "qv": qv,
            "qn": np.asarray(a.quiet_n, np.int32),
            "hv": np.ascontiguousarray(hv, np.float32),
            "hn": np.asarray(hn, np.int32),
            "sb": np.asarray(a.standby, np.float32),
            "sbn": sbn.astype(np.int32),
        },
        schema={
            "key": pl.String,
            "sample": pl.Int64,
            "qv": pl.Array(pl.Float32, 24),
            "qn": pl.Array(pl.Int32, 24),
            "hv": pl.Array(pl.Float32, 24),
            "hn": pl.Array(pl.Int32, 24),
            "sb": pl.Float32,
            "sbn": pl.Int32,
        },
    )


def sample_step(rows: int) -> int:
    """Keep the rows whose `sample` is a multiple of this, for `rows` rows in all."""
    return max(1, rows // SAMPLE)


def combine(frames: list[pl.DataFrame], rows: int | None = None) -> Priors:
    """The priors from the figures of every row of every engine (or of the rows already kept by
    sample_step(rows), `rows` being the count of all of them)."""
    f = pl.concat([x for x in frames if x.height], how="vertical") if frames else None
    if f is None or f.height == 0:
        return Priors.default()
    step = sample_step(rows if rows is not None else f.height)
    f = f.filter(pl.col("sample") % step == 0)
    qv, qn = f["qv"].to_numpy(), f["qn"].to_numpy()
    hv, hn = f["hv"].to_numpy(), f["hn"].to_numpy()
    quiet = [_median(qv[:, h], qn[:, h], routine.DEFAULT_QUIET_H[h]) for h in range(24)]
    high = [_median(hv[:, h], hn[:, h], routine.DEFAULT_HIGH_KW) for h in range(24)]
    standby = _median(f["sb"].to_numpy(), f["sbn"].to_numpy(), routine.DEFAULT_STANDBY_KW)
    return Priors(tuple(quiet), tuple(high), standby)


def _median(values: np.ndarray, n: np.ndarray, default) -> float:
    # routine.population on the hash-chosen rows: the same value whatever their order.
    ok = n >= MIN_DAYS
    if np.count_nonzero(ok) >= 5:
        return float(np.float32(routine.median(np.ascontiguousarray(values[ok], np.float32))))
    return float(np.float32(default))


def learning_engine(config: EngineConfig | None = None) -> Engine:
    """A fresh engine for learning figures: priors pinned at the built-in defaults, so that
    what each home learns does not depend on which other homes the engine holds."""
    eng = Engine(config)
    eng.pin_priors(*Priors.default().values())
    return eng


def learn_figures(
    readings: pl.DataFrame, until: int, config: EngineConfig | None = None
) -> pl.DataFrame:
    """figures() of a learning engine warmed up on the readings that start before `until`
    (epoch s), as learned by the end of the last interval ending by then."""
    eng = learning_engine(config)
    start = epoch_seconds(readings["ts"], eng.cfg.tz, "readings")
    window = readings.filter(pl.Series(start.to_numpy() < until))
    if window.height:
        eng.learn_readings(window, until)
    return figures(eng)


def learn_priors(
    readings: pl.DataFrame, until: int, config: EngineConfig | None = None
) -> Priors:
    """Priors learned over every home of `readings` from those that start before `until`."""
    return combine([learn_figures(readings, until, config)])
