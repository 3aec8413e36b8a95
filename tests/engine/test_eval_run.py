"""`lianxin eval` end to end on the committed real sample: reproducible, and the plumbing (local
time in, UTC out) loses nothing."""

import json
import subprocess
import sys
from datetime import timedelta

import polars as pl

from lianxin.commands.eval import load_readings
from lianxin.engine.evaluation import evaluate
from lianxin.engine.evaluation.baseline import fixed_rule
from lianxin.engine.evaluation.incidents import home_profiles

SAMPLE = "tests/data/lcl_sample.parquet"
SMALL = dict(homes=6, weeks=8, weeks_warmup=3)


def lianxin(*args):
    return subprocess.run(
        [sys.executable, "-m", "lianxin", *args], capture_output=True, text=True, timeout=300
    )


def test_eval_is_reproducible_for_a_seed(tmp_path):
    args = ["eval", "--data", SAMPLE, "--homes", "6", "--weeks", "8", "--weeks-warmup", "3"]
    first = lianxin(*args, "--seed", "5", "--out", str(tmp_path / "a.json"), "--misses", "2")
    assert first.returncode == 0, first.stderr
    assert "missed_routine -> inactivity" in first.stdout
    assert "fixed 12 h rule" in first.stdout
    assert "missed incidents (engine)" in first.stdout
    again = lianxin(*args, "--seed", "5", "--out", str(tmp_path / "b.json"))
    assert again.returncode == 0, again.stderr
    a = (tmp_path / "a.json").read_text()
    assert a == (tmp_path / "b.json").read_text()
    result = json.loads(a)
    assert result["data"]["homes"] == 6
    assert result["incidents"], "incidents were injected"
    for scorer in ("engine", "fixed_rule"):
        assert result[scorer]["false_alarms"]["clean_home_months"] > 0
    # the targets are listed, each judged on the figure it shows
    gap = next(t for t in result["targets"] if t["target"].startswith("data_gap recall"))
    recall = result["engine"]["incidents"]["silent_meter"]["recall"]
    assert gap["value"] == recall and gap["met"] == (recall is not None and recall >= 0.98)
    other = evaluate(load_readings(SAMPLE), seed=6, **SMALL)
    assert other["incidents"] != result["incidents"]


def test_engine_side_gets_utc_instants_and_is_scored_like_the_rule():
    """A detector that is the fixed rule itself, fed through the engine's door (UTC instants,
    the homes' zone Asia/Shanghai beside them), must score exactly like the rule."""
    readings = load_readings(SAMPLE)

    def rule_as_engine(instants, *, topology, events, tz):
        assert topology.columns == ["household_id", "transformer_area"]
        assert set(events.columns) == {"household_id", "ts", "event"}
        assert tz == "Asia/Shanghai"
        # instants, never a local time to be guessed at in the autumn hour
        assert instants.schema["ts"].time_zone == events.schema["ts"].time_zone == "UTC"
        utc = instants.with_columns(pl.col("ts").dt.replace_time_zone(None))
        return fixed_rule(utc, home_profiles(utc, timedelta(weeks=3)))

    result = evaluate(readings, seed=2, tz="Asia/Shanghai", detector=rule_as_engine, **SMALL)
    engine, rule = result["engine"], result["fixed_rule"]
    assert engine["incidents"] == rule["incidents"]
    assert engine["false_alarms"] == rule["false_alarms"]
    assert engine["incidents"]["missed_routine"]["found"] > 0


def test_eval_names_a_missing_file_in_one_line(tmp_path):
    result = lianxin("eval", "--data", str(tmp_path / "nope.parquet"))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "nope.parquet: no such file" in result.stderr


def test_eval_rejects_an_unknown_time_zone():
    result = lianxin("eval", "--data", SAMPLE, "--tz", "Mars/Base")
    assert result.returncode == 1
    assert "--tz 'Mars/Base' is not a known time zone" in result.stderr


def test_eval_without_a_seed_judges_the_held_out_half_over_seeds_and_seasons(tmp_path):
    out = tmp_path / "suite.json"
    args = ["eval", "--data", SAMPLE, "--weeks-warmup", "3", "--seasons", "winter"]
    result = lianxin(*args, "--seeds", "1,2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "heldout half:" in result.stdout and "tuning half:" in result.stdout
    assert "inactivity p90 latency <= the fixed rule's" in result.stdout
    suite = json.loads(out.read_text())
    tuning, heldout = set(suite["homes"]["tuning"]), set(suite["homes"]["heldout"])
    # two disjoint halves of all the homes, fixed by the split seed
    assert not tuning & heldout
    assert tuning | heldout == set(load_readings(SAMPLE).get_column("household_id").unique())
    assert abs(len(tuning) - len(heldout)) <= 1
    assert [(r["half"], r["seed"]) for r in suite["runs"]] == [
        ("heldout", 1), ("heldout", 2), ("tuning", 1), ("tuning", 2)
    ]  # fmt: skip
    # every run is scored on its half's homes only
    assert all(r["homes"] == len(heldout) for r in suite["runs"] if r["half"] == "heldout")
    # the mean and worst are those of the runs
    held = [r["inact_recall"] for r in suite["runs"] if r["half"] == "heldout"]
    assert suite["summary"]["heldout"]["inact_recall"]["worst"] == min(held)
    assert abs(suite["summary"]["heldout"]["inact_recall"]["mean"] - sum(held) / 2) < 1e-3
    # another split seed gives another split; a single run keeps to the half asked for
    other = lianxin(*args, "--seeds", "1", "--split-seed", "7", "--half", "heldout",
                    "--out", str(tmp_path / "other.json"))  # fmt: skip
    assert other.returncode == 0, other.stderr
    assert set(json.loads((tmp_path / "other.json").read_text())["homes"]["heldout"]) != heldout
    one = lianxin(*args[:-2], "--seed", "1", "--half", "tuning", "--out", str(tmp_path / "1.json"))
    assert one.returncode == 0, one.stderr
    assert json.loads((tmp_path / "1.json").read_text())["data"]["homes"] == len(tuning)


def test_eval_names_an_unknown_season():
    result = lianxin("eval", "--data", SAMPLE, "--seasons", "winter,monsoon")
    assert result.returncode == 1
    assert "--seasons: unknown season 'monsoon'" in result.stderr
