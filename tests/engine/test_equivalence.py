"""Speed work must not change what the engine finds: replaying the real sample gives exactly the
findings (and the final learned state) recorded in tests/data/ from the reference engine.

Regenerate deliberately (only when a change of results is intended), with an explicit flag that
prints a summary of the differences (see tests/engine/golden.py):
    LIANXIN_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest -p no:cacheprovider -q \
        tests/engine/test_equivalence.py tests/engine/test_golden_scenario.py
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.replay import replay
from tests.engine.golden import check_findings, check_state

DATA = Path(__file__).parents[1] / "data"
SAMPLE = DATA / "lcl_sample.parquet"
GOLDEN = DATA / "lcl_sample_findings.golden.jsonl"
GOLDEN_STATE = DATA / "lcl_sample_state.golden.json"
TZ = "Europe/London"


def run():
    lcl = pl.read_parquet(SAMPLE).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    eng = Engine(EngineConfig(tz=TZ))
    findings = replay(lcl, engine=eng)
    return eng, [f.to_dict() for f in findings]


def state_digest(eng: Engine) -> dict:
    out = {}
    for k in sorted(eng.a):
        v = np.ascontiguousarray(eng.a[k])
        out[k] = f"{v.dtype}{list(v.shape)}:" + hashlib.sha1(v.tobytes()).hexdigest()
    for k in sorted(eng.pop):
        v = np.ascontiguousarray(np.asarray(eng.pop[k]))
        out[f"pop_{k}"] = hashlib.sha1(v.tobytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def result():
    return run()


def test_findings_identical_to_golden(result):
    _, got = result
    # As they would be written: the comparison is on the JSON form of the findings.
    check_findings(GOLDEN, [json.loads(json.dumps(f, ensure_ascii=False)) for f in got])


def test_learned_state_identical_to_golden(result):
    eng, _ = result
    check_state(GOLDEN_STATE, state_digest(eng))


def test_kept_maximum_and_counts_match_a_rescan(result):
    from lianxin.engine import routine

    eng, _ = result
    a = eng.a
    hv, hn = routine.ring_quantile(a.kw_ring, 1.0)
    np.testing.assert_array_equal(a.high_max, hv)
    np.testing.assert_array_equal(a.high_n, hn)
    qn = np.count_nonzero(a.q_ring != routine.Q_UNKNOWN, axis=-1)
    np.testing.assert_array_equal(a.quiet_n, qn)


def test_kept_sorted_rings_match_a_sort(result):

    eng, _ = result
    a = eng.a
    want = np.sort(a.q_ring, axis=-1).transpose(1, 2, 0)
    np.testing.assert_array_equal(eng.q_sorted, want)
    np.testing.assert_array_equal(a.zrun_pos, np.count_nonzero(a.zrun_ring > 0, axis=-1))
    restored = Engine.restore(eng.snapshot())
    np.testing.assert_array_equal(restored.q_sorted, want)


def test_sorted_replace_is_a_sort():
    from lianxin.engine import routine

    rng = np.random.default_rng(0)
    for _ in range(100):
        d, n = int(rng.integers(2, 30)), int(rng.integers(1, 300))
        top = int(rng.integers(2, 256))
        ring = rng.integers(0, top, (d, n)).astype(np.uint8)
        ring[rng.random((d, n)) < 0.2] = routine.Q_UNKNOWN
        s = np.sort(ring, axis=0)
        for _ in range(10):
            slot = int(rng.integers(0, d))
            old = ring[slot].copy()
            new = rng.integers(0, top, n).astype(np.uint8)
            new[rng.random(n) < 0.2] = routine.Q_UNKNOWN
            same = rng.random(n) < 0.1
            new[same] = old[same]
            ring[slot] = new
            routine.sorted_replace(s, old, new)
            np.testing.assert_array_equal(s, np.sort(ring, axis=0))


def test_prepared_median_is_ring_quantile_bit_for_bit():
    from lianxin.engine import routine

    rng = np.random.default_rng(1)
    for _ in range(200):
        n, d = int(rng.integers(1, 200)), int(rng.integers(2, 30))
        ring = (rng.integers(0, 20, (n, d)) / 4).astype(np.float32)  # many ties
        ring[rng.random((n, d)) < rng.random()] = np.nan
        slot = int(rng.integers(0, d))
        known, lo, hi = routine.median_prepare(ring, slot)
        x = (rng.integers(0, 20, n) / 4).astype(np.float32)
        x[rng.random(n) < 0.3] = np.nan
        ring[:, slot] = x
        v, k = routine.median_complete(known, lo, hi, x)
        want_v, want_k = routine.ring_quantile(ring, 0.5)
        np.testing.assert_array_equal(k, want_k)
        assert v.tobytes() == want_v.tobytes()


def test_median_is_numpys_bit_for_bit():
    from lianxin.engine.routine import median

    rng = np.random.default_rng(0)
    for n in [*range(1, 40), 999, 1000, 20001]:
        v = (rng.random(n) * 10).astype(np.float32)
        assert np.float32(median(v)).tobytes() == np.float32(np.median(v)).tobytes()
    v = np.array([1, np.nan, 2], np.float32)
    assert np.isnan(median(v))

