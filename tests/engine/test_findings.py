"""A finding's dict (what replay files, alerts and Spark carry) holds every field and reads back."""

import json
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lianxin.engine.findings import Finding

# A finding with every field set: a grid outage of an area (started 08:00 at UTC+8).
OUTAGE = Finding(
    kind="grid_outage",
    severity="critical",
    started_at=datetime(2026, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=8))),
    detected_at=datetime(2026, 3, 1, 1, 30, tzinfo=UTC),
    reason_en="12 homes dark",
    reason_zh="12户停电",
    transformer_area="T-7",
    households=("h1", "h2"),
    evidence={"homes_dark": 12, "names": ["h1", "h2"]},
)


def test_a_finding_written_as_json_reads_back_equal_with_every_field():
    f = OUTAGE
    d = json.loads(json.dumps(f.to_dict(), ensure_ascii=False))
    assert set(d) == {x.name for x in fields(Finding)}
    assert d["started_at"] == "2026-03-01T00:00:00+00:00"
    assert d["households"] == ["h1", "h2"] and d["kind"] == "grid_outage"
    assert Finding.from_dict(d) == f
    # The dict is the caller's: changing it leaves the finding as it was.
    d2 = f.to_dict()
    d2["evidence"]["homes_dark"] = 0
    assert f.evidence["homes_dark"] == 12


def test_a_finding_worded_later_reads_and_pickles_as_one_worded_at_once():
    import pickle

    calls = []

    def words():
        calls.append(1)
        return "No activity since 23:00", "自23:00起无用电活动", {"quiet_hours": 9.5}

    t0, t1 = datetime(2026, 3, 1, 15, tzinfo=UTC), datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    later = Finding.worded_later("inactivity", "warning", t0, t1, "h1", words, "raised")
    now = Finding.about_home(
        "inactivity", "warning", t0, t1, "No activity since 23:00", "自23:00起无用电活动",
        "h1", {"quiet_hours": 9.5}, "raised",
    )  # fmt: skip
    # What names it (all the alerts keep about a home nobody is enrolled for) needs no wording.
    assert later.brief() == {k: v for k, v in now.to_dict().items() if k in later.brief()}
    assert later.finding_id == now.finding_id and calls == []
    assert later.to_dict() == now.to_dict() and later == now
    assert later.evidence == {"quiet_hours": 9.5} and calls == [1]  # worded once
    # Pickled (Spark, multiprocessing) with its wording, not the function that makes it.
    fresh = Finding.worded_later("inactivity", "warning", t0, t1, "h1", words, "raised")
    assert pickle.loads(pickle.dumps(fresh)).to_dict() == now.to_dict()
    with pytest.raises(AttributeError):
        _ = fresh.no_such_field


def test_an_inactivity_finding_read_days_later_says_what_it_said_when_raised():
    import polars as pl

    from lianxin.engine.replay import replay
    from tests.engine.curves import STANDBY, at, edit, home, local, raised

    town = pl.concat([home(f"h{i}", 28, seed=i) for i in range(4)])
    df = edit(town, "h3", at(23, 23), at(24, 20), pl.lit(STANDBY))
    (later,) = raised(replay(df), "inactivity", "h3")  # read after four more days
    cut = local(later.detected_at).replace(tzinfo=None)
    until_raised = df.filter(pl.col("ts") < cut)  # the last interval ends as it is raised
    (at_once,) = raised(replay(until_raised), "inactivity", "h3")  # read as it is raised
    assert later.to_dict() == at_once.to_dict()
    assert "yesterday" in later.reason_en and later.evidence["history_days"] == 24


def test_a_finding_line_is_json_dumps_of_its_dict_character_for_character():
    """The replay file's lines (Finding.to_json) are what json.dumps of to_dict writes, for
    every kind the engine raises and for texts that need escaping."""
    from tests.engine.test_golden_scenario import scenario

    odd = replace(
        OUTAGE,
        reason_en='Area "T-7"\nback\\slash\ttab \u2028',
        reason_zh="台区“七”停电",
        transformer_area='T-"7"',
        households=("h1", 'h"2'),
        evidence={"homes_dark": 12, "ratio": float("nan"), "names": ["甲", None], "ok": True},
    )
    quiet = Finding.about_home(
        "inactivity", "warning", odd.started_at, odd.detected_at, "x", "y",
        "户 \"7\"", {}, "resolved",
    )  # fmt: skip
    findings = [odd, quiet, *(Finding.from_dict(d) for d in scenario())]
    assert {f.kind for f in findings} >= {"grid_outage", "inactivity", "no_power", "voltage"}
    for f in findings:
        assert f.to_json() == json.dumps(f.to_dict(), ensure_ascii=False)
