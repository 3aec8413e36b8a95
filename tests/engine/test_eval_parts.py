"""The evaluation's parts on hand-made frames: injection, the fixed rule, and scoring."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from lianxin.commands.eval import load_readings
from lianxin.engine.evaluation.baseline import fixed_rule
from lianxin.engine.evaluation.incidents import (
    Plan,
    assign_areas,
    home_profiles,
    inject,
    plan_incidents,
    reference_times,
    weekly_standby,
    with_thresholds,
)
from lianxin.engine.evaluation.scoring import Truth, real_windows, score
from lianxin.engine.findings import Finding
from lianxin.errors import LianxinError

T0 = datetime(2013, 1, 1)
HH = timedelta(minutes=30)
H = timedelta(hours=1)


def curve(home: str, days: int, night=0.1, day=0.5) -> pl.DataFrame:
    """A home on a 30-minute grid: standby at night (0-7 h), busy in the day."""
    ts = [T0 + i * HH for i in range(days * 48)]
    kwh = [night if t.hour < 7 else day for t in ts]
    return pl.DataFrame({"household_id": home, "ts": ts, "kwh": kwh})


def touched(*rows) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "incident_id": f"I{i}",
                "kind": k,
                "household_id": h,
                "start": s,
                "end": e,
                "kw": kw,
                "standby": 0.1,
            }
            for i, (k, h, s, e, kw) in enumerate(rows)
        ],
        schema={
            "incident_id": pl.String,
            "kind": pl.String,
            "household_id": pl.String,
            "start": pl.Datetime("us"),
            "end": pl.Datetime("us"),
            "kw": pl.Float64,
            "standby": pl.Float64,
        },
    )


def test_injection_does_what_it_says():
    readings = pl.concat([curve(h, 3) for h in ("A", "B", "C", "D")])
    prof = home_profiles(readings, timedelta(days=1))
    day2 = T0 + timedelta(days=1)
    inc = touched(
        ("supply_lost", "A", day2 + 8 * H, day2 + 10 * H, 0.0),
        ("missed_routine", "B", day2 + 6 * H, day2 + 18 * H, 0.0),
        ("appliance_on", "C", day2 + 9 * H, day2 + 12 * H, 2.0),
        ("silent_meter", "D", day2 + 12 * H, day2 + 18 * H, 0.0),
    )
    out = inject(readings, prof, inc)

    def values(home, lo, hi):
        return (
            out.filter((pl.col("household_id") == home) & pl.col("ts").is_between(lo, hi, "left"))
            .get_column("kwh")
            .to_list()
        )

    assert values("A", day2 + 8 * H, day2 + 10 * H) == [0.0] * 4
    assert values("A", day2 + 10 * H, day2 + 11 * H) == [0.5, 0.5]  # back after the window
    # standby (10th percentile of warm-up) is the night level 0.1: the day is flattened to it
    assert values("B", day2 + 6 * H, day2 + 18 * H) == [0.1] * 24
    # +2 kW for half an hour is +1 kWh per interval
    assert values("C", day2 + 9 * H, day2 + 12 * H) == [1.5] * 6
    assert values("D", day2 + 12 * H, day2 + 18 * H) == []  # rows gone, not zeros
    assert out.filter(pl.col("household_id") == "D").height == 3 * 48 - 12
    # everything outside the windows is untouched
    outside = out.join(readings, on=["household_id", "ts"], suffix="_orig").filter(
        pl.col("kwh") != pl.col("kwh_orig")
    )
    assert outside.height == 4 + 22 + 6  # B's two night slots 06:00-07:00 were already 0.1

    plan = Plan(
        incidents=inc.with_columns(expects=pl.lit("x")),
        touched=inc,
        events=pl.DataFrame(
            schema={"household_id": pl.String, "ts": pl.Datetime("us"), "event": pl.String}
        ),
    )
    refs = dict(reference_times(readings, prof, plan).iter_rows())
    assert refs["I0"] == day2 + 8 * H + HH  # end of the first zero interval
    assert refs["I1"] == day2 + 7 * H + HH  # the first activity hidden, 07:00, ends 07:30
    assert refs["I2"] == day2 + 9 * H
    assert refs["I3"] == day2 + 12 * H


def test_plan_is_seeded_apart_after_warmup_and_observable():
    readings = load_readings("tests/data/lcl_sample.parquet")
    prof = home_profiles(readings, timedelta(weeks=3))
    topo = assign_areas(prof.get_column("household_id").to_list(), 6, seed=3)
    plan = plan_incidents(readings, prof, topo, seed=3, slot_days=7, grid_outage_rate=0.2)
    again = plan_incidents(readings, prof, topo, seed=3, slot_days=7, grid_outage_rate=0.2)
    assert plan.incidents.equals(again.incidents) and plan.events.equals(again.events)
    other = plan_incidents(readings, prof, topo, seed=4, slot_days=7, grid_outage_rate=0.2)
    assert not plan.incidents.equals(other.incidents)

    inc = plan.incidents
    assert set(inc.get_column("kind")) >= {
        "supply_lost",
        "missed_routine",
        "appliance_on",
        "silent_meter",
        "grid_outage",
    }
    t = plan.touched.join(prof.select("household_id", "warm_end"), on="household_id")
    assert (t.get_column("start") >= t.get_column("warm_end")).all()
    hours = (inc.get_column("end") - inc.get_column("start")).dt.total_seconds() / 3600
    for kind, lo, hi in (
        ("supply_lost", 2, 24),
        ("missed_routine", 12, 48),
        ("appliance_on", 3, 12),
        ("silent_meter", 6, 48),
    ):
        h = hours.filter(inc.get_column("kind") == kind)
        assert h.min() >= lo and h.max() <= hi
    kw = inc.filter(pl.col("kind") == "appliance_on").get_column("kw")
    assert kw.min() >= 1.5 and kw.max() <= 3.0
    # a home's incidents are at least 3 days apart (grid outages included)
    gaps = (
        plan.touched.sort("household_id", "start")
        .select(gap=pl.col("start") - pl.col("end").shift(1).over("household_id"))
        .drop_nulls()
        .get_column("gap")
    )
    assert gaps.min() >= timedelta(days=3)
    # a grid outage zeroes every home of its area at once
    g = inc.filter(pl.col("kind") == "grid_outage").row(0, named=True)
    homes = plan.touched.filter(pl.col("incident_id") == g["incident_id"])
    area = topo.filter(pl.col("transformer_area") == g["transformer_area"])
    assert homes.height == g["n_homes"] >= 3
    assert set(homes.get_column("household_id")) <= set(area.get_column("household_id"))
    # every missed routine hides real activity: its reference time exists
    refs = reference_times(readings, prof, plan)
    assert refs.get_column("ref").null_count() == 0
    # ... and hides it at least 4 h before the end (else it is only a late start)
    missed = inc.join(refs, on="incident_id").filter(pl.col("kind") == "missed_routine")
    assert missed.height and (missed["end"] - missed["ref"]).min() >= timedelta(hours=4)
    # power-off incidents come with their last gasp and power-on events
    po = inc.filter(pl.col("kind") == "power_off_events").row(0, named=True)
    ev = plan.events.filter(pl.col("household_id") == po["household_id"])
    off = ev.filter(pl.col("event") == "power_off").get_column("ts")
    on = ev.filter(pl.col("event") == "power_on").get_column("ts")
    assert ((off > po["start"]) & (off < po["start"] + timedelta(minutes=1))).any()
    assert ((on > po["end"]) & (on < po["end"] + timedelta(minutes=1))).any()


def test_fixed_rule_fires_after_12_hours_without_use_and_not_across_a_gap():
    base = curve("A", 6)
    day3 = T0 + timedelta(days=3)
    # day 3: nothing above standby from 07:00 (last use ended 07:00 on... the night before)
    quiet = base.with_columns(
        kwh=pl.when(pl.col("ts").is_between(day3, day3 + timedelta(hours=20), "left"))
        .then(0.1)
        .otherwise(pl.col("kwh"))
    )
    # day 5: data missing 00:00-14:00, then only standby until 23:00
    day5 = T0 + timedelta(days=5)
    gap = quiet.filter(~pl.col("ts").is_between(day5, day5 + 14 * H, "left")).with_columns(
        kwh=pl.when(pl.col("ts").is_between(day5, day5 + 23 * H, "left"))
        .then(0.1)
        .otherwise(pl.col("kwh"))
    )
    prof = home_profiles(gap, timedelta(days=1))
    found = fixed_rule(gap, prof)
    # the day before ends active at 24:00; 12 h later is 12:00 on day 3
    assert [f.detected_at for f in found] == [(day3 + 12 * H).replace(tzinfo=UTC)]
    assert found[0].started_at == day3.replace(tzinfo=UTC)
    assert found[0].kind == "inactivity" and found[0].household_id == "A"
    # with the data there on day 5 the rule fires at 12:00, the gap keeps it quiet
    no_gap = quiet.with_columns(
        kwh=pl.when(pl.col("ts").is_between(day5, day5 + 23 * H, "left"))
        .then(0.1)
        .otherwise(pl.col("kwh"))
    )
    found = fixed_rule(no_gap, prof)
    assert [f.detected_at.replace(tzinfo=None) for f in found] == [day3 + 12 * H, day5 + 12 * H]


def finding(kind, home, detected, area=None, homes=()):
    at = detected.replace(tzinfo=UTC)
    return Finding(
        kind=kind,
        severity="warning",
        started_at=at - H,
        detected_at=at,
        reason_en="x",
        reason_zh="x",
        household_id=home,
        transformer_area=area,
        households=tuple(homes),
    )


def test_scoring_counts_hits_misses_false_alarms_and_latency():
    readings = pl.concat([curve(h, 40) for h in ("A", "B", "C", "D")])
    prof = home_profiles(readings, timedelta(days=7))
    topo = pl.DataFrame(
        {"household_id": ["A", "B", "C", "D"], "transformer_area": ["T1", "T1", "T2", "T2"]}
    )
    d = T0 + timedelta(days=10)
    inc = touched(
        ("supply_lost", "A", d + 8 * H, d + 12 * H, 0.0),  # I0: hit, 1 h after ref
        ("supply_lost", "B", d + 8 * H, d + 12 * H, 0.0),  # I1: missed (finding too late)
        ("missed_routine", "C", d + 6 * H, d + 30 * H, 0.0),  # I2: hit, latency from 07:30
        ("silent_meter", "D", d + 6 * H, d + 12 * H, 0.0),  # I3: found, but also inactivity
        ("grid_outage", "A", d + 20 * 24 * H, d + 20 * 24 * H + 5 * H, 0.0),  # I4
        ("grid_outage", "B", d + 20 * 24 * H, d + 20 * 24 * H + 5 * H, 0.0),
    ).with_columns(incident_id=pl.Series(["I0", "I1", "I2", "I3", "I4", "I4"]))
    incidents = (
        inc.group_by("incident_id", maintain_order=True)
        .agg(pl.col("kind", "household_id", "start", "end", "kw").first(), n_homes=pl.len())
        .join(topo, on="household_id")
        .with_columns(
            expects=pl.col("kind").replace_strict(
                {
                    "supply_lost": "no_power",
                    "missed_routine": "inactivity",
                    "silent_meter": "data_gap",
                    "grid_outage": "grid_outage",
                }
            ),
            household_id=pl.when(pl.col("kind") == "grid_outage")
            .then(None)
            .otherwise(pl.col("household_id")),
        )
    )
    plan = Plan(
        incidents=incidents,
        touched=inc,
        events=pl.DataFrame(
            schema={"household_id": pl.String, "ts": pl.Datetime("us"), "event": pl.String}
        ),
    )
    refs = reference_times(readings, prof, plan)
    absence = pl.DataFrame(
        {"household_id": ["C"], "start": [d + 15 * 24 * H], "end": [d + 17 * 24 * H]}
    )
    empty = absence.clear()
    g = d + 20 * 24 * H
    # B's own meter reads zero for a while after the outage is over
    zero_runs = pl.DataFrame({"household_id": ["B"], "start": [g + 5 * H], "end": [g + 7 * H]})
    truth = Truth(
        incidents=incidents.join(refs, on="incident_id"),
        touched=inc,
        profiles=prof,
        topology=topo,
        absences=absence,
        real_gaps=empty,
        zero_runs=zero_runs,
        grace=H,
        after=24 * H,
    )
    findings = [
        finding("no_power", "A", d + 9 * H + HH),  # ref is 08:30 -> 1.0 h
        finding("no_power", "B", d + 14 * H),  # after end + grace: a miss, and not clean
        finding("inactivity", "C", d + 11 * H + HH),  # ref 07:30 -> 4.0 h
        finding("data_gap", "D", d + 8 * H),
        finding("inactivity", "D", d + 10 * H),  # a data gap called inactivity
        finding("inactivity", "D", d + 6 * H),  # at the gap's start: it saw none of it
        finding("grid_outage", None, g + HH + HH, area="T1", homes=("A", "B")),  # ref g+30min
        finding("no_power", "A", g + 2 * H),  # individual no_power inside the outage
        finding("no_power", "B", g + 5 * H + HH),  # after it, B's own zeros: not held against
        finding("high_load", "C", d + 5 * 24 * H),  # clean period: a false alarm
        finding("inactivity", "C", d + 16 * 24 * H),  # inside a real absence: excused
        finding("no_power", "D", T0 + 2 * 24 * H),  # during warm-up: not scored
    ]
    s = score(findings, truth)
    t = s["incidents"]
    assert (t["supply_lost"]["n"], t["supply_lost"]["found"], t["supply_lost"]["recall"]) == (
        2,
        1,
        0.5,
    )
    assert t["supply_lost"]["latency_h_median"] == 1.0
    assert t["missed_routine"]["found"] == 1 and t["missed_routine"]["latency_h_median"] == 4.0
    assert t["silent_meter"]["recall"] == 1.0 and t["silent_meter"]["latency_h_median"] == 2.0
    assert t["grid_outage"]["recall"] == 1.0 and t["grid_outage"]["latency_h_median"] == 0.5
    assert t["appliance_on"]["n"] == 0 and t["appliance_on"]["recall"] is None
    assert s["checks"]["data_gaps_reported_as_inactivity_or_no_power"] == 1
    assert s["checks"]["grid_outages_with_individual_no_power"] == 1
    assert s["checks"]["individual_no_power_in_grid_outages"] == 1
    fa = s["false_alarms"]
    assert fa["total"]["count"] == 2 and fa["by_kind"]["high_load"]["count"] == 1
    assert fa["by_kind"]["inactivity"]["count"] == 1  # the one from before the gap
    assert s["real_events"]["inactivity_inside_absences"] == 1
    assert s["findings_during_warmup"] == 1
    # 4 homes x (40 - 7 days) minus each home's incident windows + 24 h
    busy = (4 + 4 + 24 + 6 + 5 + 5) + 6 * 24
    months = (4 * 33 * 24 - busy) / (365.25 / 12 * 24)
    assert fa["clean_home_months"] == pytest.approx(months, abs=1e-3)
    assert fa["total"]["per_home_month"] == pytest.approx(2 / months, abs=1e-3)


def test_real_windows_find_absences_gaps_and_zero_runs():
    r = (
        curve("A", 5)
        .with_columns(
            kwh=pl.when(pl.col("ts").is_between(T0 + 30 * H, T0 + 60 * H, "left"))
            .then(0.1)
            .when(pl.col("ts").is_between(T0 + 80 * H, T0 + 82 * H, "left"))
            .then(0.0)
            .otherwise(pl.col("kwh"))
        )
        .filter(~pl.col("ts").is_between(T0 + 100 * H, T0 + 103 * H, "left"))
    )
    prof = home_profiles(r, timedelta(days=1))
    absences, gaps, zeros = real_windows(r, prof)
    # the last use ends at midnight after day 1, the next starts at 12:00 on day 3
    assert absences.rows() == [("A", T0 + 24 * H, T0 + 60 * H)]
    assert gaps.rows() == [("A", T0 + 100 * H, T0 + 103 * H)]
    assert zeros.rows() == [("A", T0 + 80 * H, T0 + 82 * H)]


def test_load_readings_converts_kw_and_names_bad_files(tmp_path):
    p = tmp_path / "uci.parquet"
    pl.DataFrame(
        {
            "household_id": ["x"] * 3,
            "ts": [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)],
            "kw": [6.0, None, 3.0],
        }
    ).write_parquet(p)
    r = load_readings(p)
    assert r.get_column("kwh").to_list() == [0.1, 0.05]  # kW x 1/60 h; the null is no data
    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"household_id": ["x"], "ts": [T0], "kwh": [-1.0]}).write_parquet(bad)
    with pytest.raises(LianxinError, match="bad.parquet.*household x.*-1.0"):
        load_readings(bad)
    twice = tmp_path / "twice.parquet"
    pl.DataFrame({"household_id": ["x", "x"], "ts": [T0, T0], "kwh": [1.0, 2.0]}).write_parquet(
        twice
    )
    with pytest.raises(LianxinError, match="twice.parquet: household x has two different kwh"):
        load_readings(twice)
    with pytest.raises(LianxinError, match="no such file"):
        load_readings(tmp_path / "none.parquet")


def test_standby_follows_the_season_but_only_from_the_past():
    # base load 0.2 kWh for 5 weeks, then 0.05 (summer): day use 0.6 throughout
    days = 10 * 7
    r = curve("A", days, night=0.2, day=0.6).with_columns(
        kwh=pl.when((pl.col("ts") >= T0 + timedelta(weeks=5)) & (pl.col("kwh") < 0.5))
        .then(0.05)
        .otherwise(pl.col("kwh"))
    )
    prof = home_profiles(r, timedelta(weeks=2))
    weekly = weekly_standby(r, prof).sort("week")
    by_week = dict(zip(weekly["week"].to_list(), weekly["standby"].to_list(), strict=True))
    monday = datetime(2012, 12, 31)
    assert by_week[monday] == 0.2  # warm-up
    assert by_week[monday + timedelta(weeks=5)] == 0.2  # the drop is not known yet
    assert by_week[monday + timedelta(weeks=9)] == 0.05  # four weeks later it is learned
    thr = with_thresholds(r, prof)
    d = monday + timedelta(weeks=9, days=2)
    assert thr.filter(pl.col("ts") == d)["active_thr"].item() == pytest.approx(0.05 * 1.25 + 0.025)
    # incidents go down to the standby level of their own week
    topo = pl.DataFrame({"household_id": ["A"], "transformer_area": ["T1"]})
    plan = plan_incidents(r, prof, topo, seed=1, slot_days=7, grid_outage_rate=0)
    levels = dict(
        plan.touched.select(pl.col("start").dt.truncate("1w"), "standby").unique().iter_rows()
    )
    assert levels and all(levels[w] == by_week[w] for w in levels)
    assert {0.2, 0.05} <= set(levels.values())


def test_a_power_cut_inside_a_no_power_the_duty_room_already_has_is_found():
    # Homes A and B are dark on their own (real data) and the engine reported it before the
    # incidents below were placed on them. A's no_power stays open through its incident: the
    # alert was on screen all along (found, latency 0). B's was resolved before its incident
    # began, and nothing new was raised: a miss. C's was raised during the warm-up and is
    # still open (a monitor would raise it at its first step): found.
    readings = pl.concat([curve(h, 30) for h in ("A", "B", "C")])
    prof = home_profiles(readings, timedelta(days=7))
    topo = pl.DataFrame({"household_id": ["A", "B", "C"], "transformer_area": ["T1"] * 3})
    d = T0 + timedelta(days=10)
    inc = touched(
        ("supply_lost", "A", d + 8 * H, d + 12 * H, 0.0),
        ("supply_lost", "B", d + 8 * H, d + 12 * H, 0.0),
        ("supply_lost", "C", d + 8 * H, d + 12 * H, 0.0),
    )
    incidents = inc.join(topo, on="household_id").with_columns(
        expects=pl.lit("no_power"), n_homes=pl.lit(1, pl.UInt32)
    )
    plan = Plan(incidents=incidents, touched=inc, events=pl.DataFrame(
        schema={"household_id": pl.String, "ts": pl.Datetime("us"), "event": pl.String}
    ))  # fmt: skip
    empty = pl.DataFrame(
        schema={"household_id": pl.String, "start": pl.Datetime("us"), "end": pl.Datetime("us")}
    )
    truth = Truth(
        incidents=incidents.join(reference_times(readings, prof, plan), on="incident_id"),
        touched=inc,
        profiles=prof,
        topology=topo,
        absences=empty,
        real_gaps=empty,
        zero_runs=empty,
        grace=H,
        after=24 * H,
    )

    def no_power(home, started, detected, event="raised"):
        return Finding(
            kind="no_power",
            severity="critical",
            started_at=started.replace(tzinfo=UTC),
            detected_at=detected.replace(tzinfo=UTC),
            reason_en="x",
            reason_zh="x",
            household_id=home,
            event=event,
        )

    findings = [
        no_power("A", d - 2 * 24 * H, d - 2 * 24 * H + HH),
        no_power("A", d - 2 * 24 * H, d + 14 * H, "resolved"),  # after A's incident
        no_power("B", d - 2 * 24 * H, d - 2 * 24 * H + HH),
        no_power("B", d - 2 * 24 * H, d + 7 * H, "resolved"),  # before B's began
        no_power("C", T0 + 3 * 24 * H, T0 + 3 * 24 * H + HH),  # in the warm-up, still open
    ]
    t = score(findings, truth)["incidents"]["supply_lost"]
    assert (t["n"], t["found"], t["latency_h_median"]) == (3, 2, 0.0)
