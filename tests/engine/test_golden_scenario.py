"""A small deterministic town whose replay raises every kind of finding, compared with a golden
file: the real sample (test_equivalence) raises only some kinds, so this one guards the others.
Regenerate only with the flag (see tests/engine/golden.py)."""

import json
from pathlib import Path

import polars as pl

from lianxin.engine.findings import Kind
from lianxin.engine.replay import replay
from tests.engine.curves import STANDBY, at, drop, edit, home
from tests.engine.golden import check_findings

DATA = Path(__file__).parents[1] / "data"
GOLDEN = DATA / "synthetic_town_findings.golden.jsonl"
REAL_GOLDEN = DATA / "lcl_sample_findings.golden.jsonl"
DAYS = 40


def scenario() -> list[dict]:
    town = pl.concat([home(f"h{i}", DAYS, seed=i) for i in range(8)])
    # h0-h3 dark together: a grid outage of area A.
    for h in ("h0", "h1", "h2", "h3"):
        town = edit(town, h, at(21, 2), at(21, 8), pl.lit(0.0))
    # h4: a prepaid cut-off (relay open, zeros, relay closed).
    town = edit(town, "h4", at(22, 10), at(22, 18), pl.lit(0.0))
    # h5: alone and dark in a lit area: no power.
    town = edit(town, "h5", at(23, 10), at(23, 14), pl.lit(0.0))
    # h6: an appliance left on (high load), then a data gap; h7: much lower use (shift).
    town = edit(town, "h6", at(24, 1), at(24, 6), pl.col("kwh") + 1.5)
    town = drop(town, "h6", at(26, 0), at(27, 0))
    town = edit(town, "h7", at(30, 0), at(DAYS, 0), pl.lit(STANDBY))
    topology = pl.DataFrame(
        {"household_id": [f"h{i}" for i in range(8)], "transformer_area": ["A"] * 4 + ["B"] * 4}
    )
    events = pl.DataFrame(
        {
            "household_id": ["h4", "h4", "h3", "h3", "h3"],
            "ts": [at(22, 10), at(22, 18)] + [at(25, 19, m) for m in (1, 7, 13)],
            "event": ["relay_open", "relay_close"] + ["voltage_low"] * 3,
        }
    )
    # h0: a low prepaid balance, then a payment; h1: pays weekly, then stops (missed payment).
    weekly = [at(d, 9) for d in (0, 7, 14, 21)]
    payments = pl.DataFrame(
        {
            "household_id": ["h0", "h0"] + ["h1"] * len(weekly),
            "ts": [at(20, 12), at(22, 9)] + weekly,
            "balance": [4.0, None] + [None] * len(weekly),
            "amount": [None, 100.0] + [50.0] * len(weekly),
        }
    )
    findings = replay(town, topology=topology, events=events, payments=payments)
    return [json.loads(json.dumps(f.to_dict(), ensure_ascii=False)) for f in findings]


def test_synthetic_town_findings_identical_to_golden():
    got = scenario()
    check_findings(GOLDEN, got)
    assert {f["kind"] for f in got} == set(Kind)


def test_the_golden_files_cover_every_finding_kind():
    kinds = set()
    for path in (REAL_GOLDEN, GOLDEN):
        kinds |= {json.loads(line)["kind"] for line in path.read_text().splitlines() if line}
    assert kinds == {k.value for k in Kind}
    # Missed payments too, not only a low balance.
    missed = [
        json.loads(line)
        for line in GOLDEN.read_text().splitlines()
        if '"payment_risk"' in line and "usual_gap_days" in line
    ]
    assert missed and missed[0]["household_id"] == "h1"
