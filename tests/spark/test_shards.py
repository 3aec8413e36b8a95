"""Shards without Spark: engines holding a shard of the homes each, with the priors learned once
and pinned and one shared clock, find exactly what `lianxin replay --prior-days` finds with one
engine holding every home; without pinning the priors they would not."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from lianxin.cli import main
from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.priors import Priors, combine, learn_priors
from lianxin.engine.replay import replay, shared_clock
from lianxin.meterdata import epoch_seconds
from lianxin.spark.shard import findings_of, plan_shard, run_shard, shard_of, window

pytestmark = pytest.mark.once  # no database: CI's PostgreSQL pass need not run it again

SAMPLE = Path(__file__).parents[1] / "data" / "lcl_sample.parquet"
TZ = "Asia/Shanghai"
DAYS = 21


@pytest.fixture(scope="module")
def sample():
    d = pl.read_parquet(SAMPLE)
    homes = sorted(d["household_id"].unique())
    # Three areas of unequal size: shards that learn alone would learn other priors.
    areas = ["TA-A" if i < 4 else "TA-B" if i < 14 else "TA-C" for i in range(len(homes))]
    return d, pl.DataFrame({"household_id": homes, "transformer_area": areas})


def order(r: dict) -> tuple:
    return r["detected_at"], r["finding_id"], r["event"]


def test_shards_with_pinned_priors_equal_one_engine(sample, tmp_path):
    d, topo = sample
    d.write_parquet(tmp_path / "r.parquet")
    topo.write_csv(tmp_path / "t.csv")
    assert main(["replay", "--readings", str(tmp_path / "r.parquet"), "--topology",
                 str(tmp_path / "t.csv"), "--prior-days", str(DAYS), "--tz", TZ, "--quiet",
                 "--out", str(tmp_path / "f.jsonl")]) == 0  # fmt: skip
    lines = (tmp_path / "f.jsonl").read_text(encoding="utf-8").splitlines()
    want = sorted((json.loads(x) for x in lines), key=order)
    assert want

    until = int(epoch_seconds(d["ts"], TZ).min()) + DAYS * 86400
    parts = {}
    for h, a in topo.iter_rows():
        parts.setdefault(shard_of(a, h, 16), []).append(h)
    assert len(parts) == 3
    plans, figures = [], []
    for homes in parts.values():
        mine = d.filter(pl.col("household_id").is_in(pl.Series(homes).implode()))
        clock, f = plan_shard(mine, snapshot=None, tz=TZ, topology=topo, learn_until=until)
        plans.append(clock)
        figures.append(f)
    priors = combine(figures)
    assert priors == learn_priors(d, until, EngineConfig(tz=TZ))
    assert priors != Priors.default()
    assert all(combine([f]) != priors for f in figures)
    clock = shared_clock(plans)
    got = []
    for s, homes in parts.items():
        mine = d.filter(pl.col("household_id").is_in(pl.Series(homes).implode()))
        table, blob = run_shard(mine, shard=s, snapshot=None, priors=priors, clock=clock, tz=TZ,
                                topology=topo)  # fmt: skip
        assert Engine.restore(blob).priors_pinned
        got += [f.to_dict() for f in findings_of(table)]
    assert sorted(got, key=order) == want

    # The engine that relearns its priors hourly over the homes it holds finds otherwise.
    unpinned = replay(d, topology=topo, tz=TZ)
    assert sorted((f.to_dict() for f in unpinned), key=order) != want


def test_pinned_priors_survive_a_snapshot(sample):
    d, _ = sample
    eng = Engine(EngineConfig(tz=TZ))
    p = Priors.default()
    quiet, high, _sb = p.values()
    eng.pin_priors(quiet + 1, high * 2, 0.25)
    replay(d, engine=eng)  # 10 weeks of 24 homes: unpinned, the priors would be relearned
    back = Engine.restore(eng.snapshot())
    assert back.priors_pinned
    assert (back.pop["quiet"] == quiet + 1).all() and (back.pop["high"] == high * 2).all()
    assert back.pop["standby"] == pytest.approx(0.25)


def test_a_run_continued_from_shard_snapshots_equals_one_run(sample):
    """Two runs split at T, the second restoring each shard's snapshot, find what one engine
    finds over the whole period, including for an area whose data stopped before T (its shard
    has nothing to read in the second run: its homes fall silent on the shared clock)."""
    d, topo = sample
    t = epoch_seconds(d["ts"], TZ).to_numpy()
    first_ts = int(t.min())
    split = first_ts + 25 * 86400
    area_c = pl.Series(topo.filter(pl.col("transformer_area") == "TA-C")["household_id"])
    stops = pl.Series(t >= split - 86400 - 3600) & d["household_id"].is_in(area_c.implode())
    d = d.filter(~stops)
    until = first_ts + DAYS * 86400
    priors = learn_priors(d, until, EngineConfig(tz=TZ))
    eng = Engine(EngineConfig(tz=TZ))
    eng.pin_priors(*priors.values())
    want = sorted((f.to_dict() for f in replay(d, topology=topo, engine=eng)), key=order)

    parts = {}
    for h, a in topo.iter_rows():
        parts.setdefault(shard_of(a, h, 16), []).append(h)
    shard_c = shard_of("TA-C", "", 16)
    snaps: dict[int, bytes | None] = dict.fromkeys(parts)
    got = []
    for run, end in (("first", split), ("second", None)):
        data = {s: d.filter(pl.col("household_id").is_in(pl.Series(h).implode()))
                for s, h in parts.items()}  # fmt: skip
        if end is not None:
            data = {s: window(x, TZ, end, inclusive=False) for s, x in data.items()}
        plans = {s: plan_shard(x, snapshot=snaps[s], tz=TZ, topology=topo)[0]
                 for s, x in data.items()}  # fmt: skip
        if run == "second":
            assert plans[shard_c] is None  # nothing left to read there
        clock = shared_clock([c for c in plans.values() if c is not None])
        if end is not None:
            clock = (clock[0], clock[1], end - (end - clock[0]) % clock[1])
        for s, x in data.items():
            table, snaps[s] = run_shard(x, shard=s, snapshot=snaps[s], priors=priors,
                                        clock=clock, tz=TZ, topology=topo)  # fmt: skip
            got += [f.to_dict() for f in findings_of(table)]
    assert sorted(got, key=order) == want
    assert any(r["kind"] == "data_gap" and r["household_id"] in area_c.to_list() for r in want)
