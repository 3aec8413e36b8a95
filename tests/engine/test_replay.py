"""Replay on real data, causality, restarts, the live step() path, bad input, and the CLI."""

import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lianxin.cli import main
from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.findings import Finding
from lianxin.engine.inputs import InputError
from lianxin.engine.replay import replay
from tests.engine.curves import at, home, raised
from tests.engine.test_learn import assert_rows_last

SAMPLE = Path(__file__).parents[1] / "data" / "lcl_sample.parquet"
TZ = "Europe/London"


@pytest.fixture(scope="module")
def lcl():
    # The sample's ts are UTC (see tests/data/README.md): pass them timezone-aware.
    return pl.read_parquet(SAMPLE).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))


@pytest.fixture(scope="module")
def lcl_findings(lcl):
    eng = Engine(EngineConfig(tz=TZ))
    return eng, replay(lcl, engine=eng)


def test_real_homes_replay_with_few_alarms(lcl, lcl_findings):
    eng, findings = lcl_findings
    assert eng.n == 24
    assert all(eng.history_days(h) >= 60 for h in eng.ids)
    after_warmup = [
        f for f in raised(findings) if f.detected_at >= datetime(2013, 2, 4, tzinfo=UTC)
    ]
    months = 24 * 41 / 30.4
    alarms = Counter(f.kind for f in after_warmup if f.severity != "info")
    # Untouched real data: alarms are rare (the 12-hour rule raises about one per home-month).
    assert sum(alarms.values()) / months < 3.0, alarms
    # Every raised finding is closed at most once, by a line with the same id.
    opened = {f.finding_id for f in raised(findings)}
    closed = Counter(f.finding_id for f in findings if f.event == "resolved")
    assert set(closed) <= opened and max(closed.values()) == 1
    for f in findings:
        assert f.reason_en and f.reason_zh and f.detected_at >= f.started_at


def test_a_meter_that_often_reads_zero_learns_it(lcl_findings):
    # MAC000029 reads exactly zero for up to 2 h many times a week. Its first zero (it never
    # read zero before) is no_power; within days its zero runs are its normal and stay quiet.
    _, findings = lcl_findings
    alarms = raised(findings, "no_power", "MAC000029")
    assert alarms[0].started_at == datetime(2013, 1, 9, 4, 30, tzinfo=UTC)
    later = [f for f in alarms if f.detected_at >= datetime(2013, 1, 14, tzinfo=UTC)]
    assert len(later) <= 3
    assert {f.household_id for f in raised(findings, "no_power")} == {"MAC000029"}


def test_causality_truncating_at_detected_at_still_raises_the_finding(lcl, lcl_findings):
    _, findings = lcl_findings
    sample = {}
    for f in raised(findings):
        sample.setdefault(f.kind, f)
    assert {"no_power", "inactivity", "high_load"} <= set(sample)
    for f in sample.values():
        # Only the readings whose interval has ended by detected_at.
        cut = lcl.filter(pl.col("ts") + pl.duration(minutes=30) <= f.detected_at)
        again = replay(cut, tz=TZ)
        match = [g for g in again if g.finding_id == f.finding_id and g.event == "raised"]
        assert match and match[0].detected_at == f.detected_at, f.kind
        assert match[0].reason_en == f.reason_en


def test_snapshot_restore_continues_exactly(lcl, lcl_findings):
    _, full = lcl_findings
    split = datetime(2013, 2, 10, 13, tzinfo=UTC)
    first = Engine(EngineConfig(tz=TZ))
    a = replay(lcl.filter(pl.col("ts") < split), engine=first)
    blob = first.snapshot()
    again = Engine.restore(blob)
    assert_rows_last(again)
    assert again.state_bytes() == first.state_bytes()
    b = replay(lcl.filter(pl.col("ts") >= split), engine=again)
    assert [f.to_dict() for f in a + b] == [f.to_dict() for f in full]
    # Given the whole file again, a restored engine skips what it has already judged.
    whole = replay(lcl, engine=Engine.restore(blob))
    assert [f.to_dict() for f in whole] == [f.to_dict() for f in b]


def test_restore_of_a_snapshot_without_derived_state_continues_exactly(lcl, lcl_findings):
    # State kept only for speed (prepared day-end figures, kept maxima and counts) is rebuilt
    # when a snapshot from before it existed is restored.
    _, full = lcl_findings
    split = datetime(2013, 2, 10, 13, tzinfo=UTC)
    first = Engine(EngineConfig(tz=TZ))
    a = replay(lcl.filter(pl.col("ts") < split), engine=first)
    z = np.load(io.BytesIO(first.snapshot()))
    derived = ("high_max", "high_n", "zrun_pos", "prep_day", "sb_known", "sb_lo", "sb_hi",
               "cs_usual", "cs_usual_n")  # fmt: skip
    buf = io.BytesIO()
    np.savez(buf, **{k: z[k] for k in z.files if k[2:] not in derived})
    again = Engine.restore(buf.getvalue())
    assert_rows_last(again)
    b = replay(lcl.filter(pl.col("ts") >= split), engine=again)
    assert [f.to_dict() for f in a + b] == [f.to_dict() for f in full]


def test_step_blocks_match_replay():
    from tests.engine.curves import STANDBY, edit

    df = pl.concat([home(f"h{i}", 16, seed=i) for i in range(3)])
    df = edit(df, "h1", at(12, 23), at(14, 0), pl.lit(STANDBY))
    df = edit(df, "h2", at(13, 3), at(13, 6), pl.lit(0.0))
    expected = replay(df)
    assert {"inactivity", "no_power"} <= {str(f.kind) for f in raised(expected)}
    eng = Engine()
    aware = df.with_columns(pl.col("ts").dt.replace_time_zone("Asia/Shanghai"))
    got = []
    for _, block in aware.group_by((pl.col("ts").dt.epoch("s") // 21600), maintain_order=True):
        got += eng.step(block)
    assert [f.to_dict() for f in got] == [f.to_dict() for f in expected]


def test_bad_input_names_the_row_field_and_value():
    df = pl.DataFrame(
        {"household_id": ["a", "a"], "ts": [at(0, 0), at(0, 0, 30)], "kwh": [0.1, -2.0]}
    )
    with pytest.raises(InputError, match=r"row 2: kwh -2.0 for household a"):
        replay(df)
    df = pl.DataFrame({"household_id": ["a", "a"], "ts": [at(0, 0), at(0, 0)], "kwh": [0.1, 0.2]})
    with pytest.raises(InputError, match="two different kwh values"):
        replay(df)
    df = pl.DataFrame({"household_id": ["a", "a"], "ts": [at(0, 0), at(0, 2)], "kwh": [0.1, 0.2]})
    with pytest.raises(InputError, match="every 120 minutes"):
        replay(df)
    df = pl.DataFrame(
        {"household_id": ["a"], "ts": [at(0, 0)], "kwh": [0.1], "meter_kind": ["oil"]}
    )
    with pytest.raises(InputError, match="meter_kind 'oil'"):
        replay(df)
    ok = home("a", 1)
    with pytest.raises(InputError, match="event 'explosion'"):
        replay(
            ok,
            events=pl.DataFrame({"household_id": ["a"], "ts": [at(0, 3)], "event": ["explosion"]}),
        )


def test_an_empty_readings_file_is_a_clear_error():
    empty = pl.DataFrame(
        {"household_id": [], "ts": [], "kwh": []},
        schema={"household_id": pl.Utf8, "ts": pl.Datetime("us"), "kwh": pl.Float64},
    )
    with pytest.raises(InputError, match="readings: there are no rows"):
        replay(empty)


def test_exact_duplicate_rows_are_accepted_once():
    df = home("a", 3)
    assert [f.to_dict() for f in replay(pl.concat([df, df.head(50)]))] == [
        f.to_dict() for f in replay(df)
    ]


def test_cli_writes_jsonl_that_round_trips(tmp_path, capsys):
    df = home("h1", 20, seed=1)
    from tests.engine.curves import edit

    df = edit(df, "h1", at(15, 10), at(15, 13), pl.lit(0.0))
    readings = tmp_path / "r.csv"
    df.write_csv(readings)
    topo = tmp_path / "t.csv"
    topo.write_text("household_id,transformer_area\nh1,TA-7\n")
    out = tmp_path / "f.jsonl"
    assert (
        main(["replay", "--readings", str(readings), "--topology", str(topo), "--out", str(out)])
        == 0
    )
    assert "no_power 1" in capsys.readouterr().out
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    raised_ = [Finding.from_dict(x) for x in lines if x["event"] == "raised"]
    assert [f.kind for f in raised_] == ["no_power"]
    assert [x["event"] for x in lines if x["finding_id"] == raised_[0].finding_id] == [
        "raised",
        "resolved",
    ]


def test_cli_bad_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "r.csv"
    bad.write_text("household_id,ts,kwh\nh1,2026-01-01 00:00,0.1\nh1,2026-01-01 00:30,lots\n")
    assert main(["replay", "--readings", str(bad), "--out", str(tmp_path / "f.jsonl")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "lianxin replay: readings row 2: kwh 'lots' for household h1 is not a number"


def test_row_lookup_of_a_block_in_any_order():
    eng = Engine()
    eng.register(pl.DataFrame({"household_id": [f"h{i}" for i in range(6)]}))
    blocks = ["h0 h1 h2", "h2 h3 h4 h5", "h5 h0 h3", "h5 h0 h3", "h1 x h2"]
    for keys in (b.split() for b in blocks):
        got = eng._rows_of_keys(pl.Series(keys))
        assert got.tolist() == [eng.index.get(k, -1) for k in keys]


def test_replay_in_many_chunks_matches_one_chunk(lcl, lcl_findings, monkeypatch):
    from lianxin.engine import replay as replay_module

    _, full = lcl_findings
    monkeypatch.setattr(replay_module, "DENSE_CELLS", 1)
    monkeypatch.setattr(replay_module, "CHUNK_TICKS", 500)
    chunked = replay(lcl, engine=Engine(EngineConfig(tz=TZ)))
    assert [f.to_dict() for f in chunked] == [f.to_dict() for f in full]


def test_readings_in_any_row_order_replay_the_same(lcl, lcl_findings):
    _, full = lcl_findings
    shuffled = lcl.sample(fraction=1.0, shuffle=True, seed=1)
    again = replay(shuffled, engine=Engine(EngineConfig(tz=TZ)))
    assert by_instant(again) == by_instant(full)


def by_instant(findings):
    """Findings as dicts in an order of their own: homes numbered in another order (rows in
    another order) may give the findings of one instant in another."""
    return sorted(
        (f.to_dict() for f in findings),
        key=lambda d: (d["detected_at"], d["household_id"] or "", d["kind"], d["event"]),
    )


def test_meters_on_other_quarter_hours_are_judged_when_their_readings_end():
    # h0 reads on :00/:30, h1 on :15/:45; h1 loses power at 20:15 on day 20.
    from tests.engine.curves import at, edit, home, local, raised

    h0 = home("h0", 22, seed=0)
    h1 = home("h1", 22, seed=1).with_columns(pl.col("ts") + timedelta(minutes=15))
    df = edit(pl.concat([h0, h1]), "h1", at(20, 20, 15), at(20, 23, 15), pl.lit(0.0))
    (f,) = raised(replay(df), "no_power", "h1")
    assert local(f.started_at) == at(20, 20, 15)
    assert local(f.detected_at) == at(20, 20, 45)  # the end of the first zero reading


def test_ticks_of_known_meters_fall_where_their_readings_end(monkeypatch):
    # Known meters keep their interval (hourly here) whatever their new readings show.
    ticks = []
    monkeypatch.setattr(Engine, "tick", lambda self, now, *a: ticks.append(now) or [])

    def replay_ticks(readings):
        eng = Engine()
        eng.register(pl.DataFrame({"household_id": ["a", "b"], "interval_s": [3600, 3600]}))
        ticks.clear()
        replay(
            pl.DataFrame(readings, schema=["household_id", "ts", "kwh"], orient="row"), engine=eng
        )
        return [(t - ticks[0]) // 60 for t in ticks]

    # a now reads every 30 minutes: its readings end on the half hours too.
    assert replay_ticks([("a", at(0, 0), 0.1), ("a", at(0, 0, 30), 0.1)]) == [0, 30]
    # One reading each, on the hour (taken as 30-minute ones): the ticks stay hourly.
    assert replay_ticks([("a", at(0, 0), 0.1), ("b", at(0, 1), 0.1)]) == [0, 60]


@pytest.mark.parametrize("value", [-0.5, float("inf"), float("nan")])
def test_a_negative_or_endless_quantity_is_refused_by_row_in_either_row_order(value):
    # The engine's one row check (lianxin.meterdata) names the input row, whichever way the
    # rows come; an infinite quantity is refused as a negative one is.
    df = pl.concat([home("a", 2), home("b", 2)]).with_row_index("line", offset=1)
    df = df.with_columns(
        kwh=pl.when((pl.col("household_id") == "b") & (pl.col("line") == 150))
        .then(value)
        .otherwise(pl.col("kwh"))
    )
    by_time = df.sort("ts", "household_id")
    for frame in (df, by_time):
        line = frame.with_row_index("row", offset=1).filter(pl.col("line") == 150)["row"][0]
        with pytest.raises(InputError) as err:
            replay(frame.drop("line"))
        assert str(err.value) == (
            f"readings row {line}: kwh {value!r} for household b is not a non-negative number"
        )


def test_two_different_values_for_one_reading_name_the_input_row_in_time_order():
    df = home("a", 2)
    clash = df.slice(40, 1).with_columns(kwh=pl.col("kwh") + 1)
    rows = pl.concat([df, home("b", 2), clash]).sort("ts", "household_id", maintain_order=True)
    with pytest.raises(InputError, match="household a has two different kwh values for ts"):
        replay(rows)


def test_a_file_read_in_pieces_replays_exactly_as_in_one_piece(lcl):
    # Homes are numbered by first appearance in the file, which orders the findings of one
    # instant: a Parquet file of several row groups arrives as several pieces, and must give the
    # very same list (in time order across meters, households in reverse order of name).
    rows = lcl.sort("ts", "household_id", descending=[False, True])
    cut = rows.height // 4
    pieces = pl.concat([rows.slice(i * cut, cut) for i in range(3)] + [rows.slice(3 * cut)],
                       rechunk=False)  # fmt: skip
    assert pieces.n_chunks() == 4
    whole = replay(rows.rechunk(), engine=Engine(EngineConfig(tz=TZ)))
    assert whole
    assert [f.to_dict() for f in replay(pieces, engine=Engine(EngineConfig(tz=TZ)))] == [
        f.to_dict() for f in whole
    ]


def test_findings_written_by_two_processes_are_the_file_one_would_write(tmp_path, monkeypatch):
    # A long list of findings is written half by a forked copy of the process: the file is
    # json.dumps of each finding, in order, whether the copy writes its half, fails (the
    # parent writes it), or the parent fails (no file, no part left, the copy stopped).
    import os

    from lianxin.commands import replay as command
    from tests.engine.test_golden_scenario import scenario

    findings = [Finding.from_dict(d) for d in scenario()]
    want = "".join(json.dumps(f.to_dict(), ensure_ascii=False) + "\n" for f in findings)
    monkeypatch.setattr(command, "FORK_WRITER_FROM", 2)
    out = tmp_path / "f.jsonl"
    command.write_findings(findings, out)
    assert out.read_text(encoding="utf-8") == want

    parent, real = os.getpid(), Finding.to_json

    def fails_in(pid_test):
        def to_json(self):
            if pid_test(os.getpid()):
                raise OSError("disk full")
            return real(self)

        return to_json

    monkeypatch.setattr(Finding, "to_json", fails_in(lambda pid: pid != parent))
    out.unlink()
    command.write_findings(findings, out)
    assert out.read_text(encoding="utf-8") == want

    monkeypatch.setattr(Finding, "to_json", fails_in(lambda pid: pid == parent))
    out.unlink()
    with pytest.raises(OSError, match="disk full"):
        command.write_findings(findings, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("threaded", [False, True])
@pytest.mark.parametrize("rows", [0, 1, 2, 3, 1001])
def test_households_are_numbered_by_first_appearance_over_the_whole_file(
    rows, threaded, monkeypatch
):
    # Numbered on two spans of rows side by side: a home first seen in the second span comes
    # after every home of the first, in its own order of appearance.
    from lianxin.engine import inputs
    from lianxin.engine.inputs import _numbered_by_first_appearance

    if threaded:
        monkeypatch.setattr(inputs, "THREADED_FROM", 0)

    rng = np.random.default_rng(rows)
    names = [f"h{i}" for i in rng.integers(0, 40, rows)] + [f"late{i % 3}" for i in range(rows)]
    hid = pl.Series(names[: rows + rows // 2 + (rows > 0)], dtype=pl.Utf8)
    first_seen, code, lens = _numbered_by_first_appearance(hid)
    want = hid.unique(maintain_order=True)
    assert first_seen.to_list() == want.to_list()
    assert code.dtype == np.int32
    assert code.tolist() == hid.cast(pl.Enum(want)).to_physical().to_list()
    assert lens.tolist() == [hid.to_list().count(h) for h in want.to_list()]


def test_a_file_in_time_order_replays_the_same_on_threads_as_without(
    lcl, lcl_findings, monkeypatch
):
    # A file of millions of readings is numbered, sorted by meter and timed on two threads;
    # the real sample (80 k readings) is done in this thread unless told otherwise. Either way
    # the findings are those of the file grouped by meter.
    from lianxin.engine import inputs

    _, full = lcl_findings
    rows = lcl.sort("ts", "household_id")
    alone = replay(rows, engine=Engine(EngineConfig(tz=TZ)))
    monkeypatch.setattr(inputs, "THREADED_FROM", 0)
    threaded = replay(rows, engine=Engine(EngineConfig(tz=TZ)))
    assert alone and [f.to_dict() for f in threaded] == [f.to_dict() for f in alone]
    assert by_instant(threaded) == by_instant(full)
