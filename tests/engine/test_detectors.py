"""Each detector on hand-made curves: the incident is raised, at the right moment, once; the
ordinary days around it raise nothing of that kind."""

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from lianxin.engine.config import EngineConfig
from lianxin.engine.inputs import InputError
from lianxin.engine.replay import replay
from tests.engine.curves import STANDBY, START, at, drop, edit, home, local, raised

DAYS = 28


@pytest.fixture(scope="module")
def town():
    return pl.concat([home(f"h{i}", DAYS, seed=i) for i in range(6)])


def test_ordinary_routine_raises_nothing_after_the_first_week(town):
    findings = replay(town)
    late = [f for f in raised(findings) if local(f.detected_at) >= at(7, 0)]
    assert late == []


def test_no_power_at_the_first_zero_interval_and_resolved_when_power_returns(town):
    df = edit(town, "h1", at(20, 10), at(20, 14), pl.lit(0.0))
    findings = replay(df)
    (f,) = raised(findings, "no_power", "h1")
    assert local(f.started_at) == at(20, 10)
    assert local(f.detected_at) == at(20, 10, 30)  # the end of the first zero interval
    assert f.severity == "critical"
    assert "never read zero" in f.reason_en and "零读数" in f.reason_zh
    closed = [x for x in findings if x.event == "resolved" and x.finding_id == f.finding_id]
    assert len(closed) == 1 and local(closed[0].detected_at) == at(20, 14, 30)
    # The dark home is explained: no inactivity, no high_load, no data_gap for it meanwhile.
    assert {x.kind for x in raised(findings, hid="h1")} == {"no_power"}


def test_one_long_outage_does_not_teach_that_zero_is_normal(town):
    # Ten days dark (the supply off while the resident was away), then a week of ordinary
    # use, then the lights go out one evening: a power cut, reported at once. Counted a day at
    # a time, the long spell filled ten days of the home's history with zero runs and made
    # an evening's zeros look like its habit for four weeks (a real London home, 2013).
    df = edit(town, "h1", at(3, 12), at(13, 12), pl.lit(0.0))
    df = edit(df, "h1", at(20, 19), at(21, 7), pl.lit(0.0))
    findings = raised(replay(df), "no_power", "h1")
    assert [local(f.started_at) for f in findings] == [at(3, 12), at(20, 19)]
    assert local(findings[1].detected_at) == at(20, 19, 30)


def test_zeros_on_both_sides_of_a_silent_day_are_not_a_day_without_power(town):
    # The meter read zero, fell silent for a day, and read zero again when it came back (a
    # real London home, 2013): the silence is a data gap, not 33 hours without power. The
    # zero run restarts with the data, and two zero intervals are not yet a power cut for a
    # home whose zero runs are this long (its usual: an hour, below).
    df = town
    for day in (2, 5, 8):  # a habit of hour-long zeros
        df = edit(df, "h1", at(day, 3), at(day, 4), pl.lit(0.0))
    df = edit(df, "h1", at(20, 1, 30), at(20, 2, 30), pl.lit(0.0))
    df = drop(df, "h1", at(20, 2, 30), at(21, 11))
    df = edit(df, "h1", at(21, 11), at(21, 11, 30), pl.lit(0.0))
    findings = replay(df)
    assert [f for f in raised(findings, "no_power", "h1") if local(f.started_at) > at(19, 0)] == []
    (gap,) = raised(findings, "data_gap", "h1")
    assert local(gap.started_at) == at(20, 2, 30)


def test_grid_outage_replaces_the_homes_no_power(town):
    df = town
    for h in ("h0", "h1", "h2", "h3"):
        df = edit(df, h, at(21, 2), at(21, 8), pl.lit(0.0))
    topo = pl.DataFrame(
        {"household_id": [f"h{i}" for i in range(6)], "transformer_area": ["A"] * 4 + ["B"] * 2}
    )
    findings = replay(df, topology=topo)
    (g,) = raised(findings, "grid_outage")
    assert g.transformer_area == "A" and g.households == ("h0", "h1", "h2", "h3")
    assert local(g.detected_at) == at(21, 2, 30)
    assert raised(findings, "no_power") == []
    assert raised(findings, "inactivity") == []
    assert [x.event for x in findings if x.finding_id == g.finding_id] == ["raised", "resolved"]


def test_grid_outages_do_not_teach_a_home_restored_after_its_area_that_zero_is_normal(town):
    # Three grid outages of area A in two weeks; each time h3's supply comes back an hour
    # after the rest of the area (the outage is over for the area by then). Those dark hours
    # were the grid's, not h3's habit: a two-hour cut of its own later is still reported.
    topo = pl.DataFrame(
        {"household_id": [f"h{i}" for i in range(6)], "transformer_area": ["A"] * 4 + ["B"] * 2}
    )
    df = town
    for day in (8, 11, 14):
        for h in ("h0", "h1", "h2"):
            df = edit(df, h, at(day, 2), at(day, 5), pl.lit(0.0))
        df = edit(df, "h3", at(day, 2), at(day, 6), pl.lit(0.0))
    df = edit(df, "h3", at(20, 19), at(20, 21), pl.lit(0.0))
    findings = replay(df, topology=topo)
    assert len(raised(findings, "grid_outage")) == 3
    late = [f for f in raised(findings, "no_power", "h3") if local(f.started_at) >= at(20, 0)]
    assert [local(f.started_at) for f in late] == [at(20, 19)]


def test_a_coarse_register_meter_reads_a_short_zero_as_under_one_step_not_as_no_power(town):
    # h1's readings are differences of 0.1 kWh registers (the registry's resolution, given to
    # a replay with the topology as Spark and `lianxin replay --topology` do): a half hour at
    # zero is under 200 W, ordinary; the register standing still for hours is under 10 W.
    df = edit(town, "h1", at(20, 2), at(20, 3), pl.lit(0.0))
    df = edit(df, "h1", at(20, 10), at(20, 22), pl.lit(0.0))
    homes = [f"h{i}" for i in range(6)]
    topo = pl.DataFrame(
        {
            "household_id": homes,
            "transformer_area": homes,
            "resolution_kwh": [None, 0.1] + [None] * 4,
        }
    )
    (f,) = raised(replay(df, topology=topo), "no_power", "h1")
    assert local(f.started_at) == at(20, 10)
    # 0.1 kWh under 10 W takes 10 h: raised when the zero run exceeds it, not at the first zero.
    assert local(f.detected_at) == at(20, 20, 30)
    assert "has not moved by its smallest step (0.1 kWh) in 10.5 h, under 10 W" in f.reason_en
    # Without the registry's resolution the same readings are no power at the first zero.
    first = [local(x.detected_at) for x in raised(replay(df, topology=topo.drop("resolution_kwh")),
                                                  "no_power", "h1")]  # fmt: skip
    assert first == [at(20, 2, 30), at(20, 10, 30)]


def test_one_home_dark_in_a_lit_area_is_no_power(town):
    df = edit(town, "h4", at(21, 2), at(21, 8), pl.lit(0.0))
    topo = pl.DataFrame({"household_id": [f"h{i}" for i in range(6)], "transformer_area": "A"})
    findings = replay(df, topology=topo)
    assert raised(findings, "grid_outage") == []
    assert [f.household_id for f in raised(findings, "no_power")] == ["h4"]


def test_power_off_event_with_missing_rows_is_no_power_not_data_gap(town):
    df = drop(town, "h2", at(22, 9), at(22, 15))
    events = pl.DataFrame(
        {
            "household_id": ["h2", "h2"],
            "ts": [at(22, 9, 5), at(22, 15)],
            "event": ["power_off", "power_on"],
        }  # fmt: skip
    )
    findings = replay(df, events=events)
    (f,) = raised(findings, "no_power", "h2")
    assert local(f.detected_at) == at(22, 9, 30)
    assert raised(findings, "data_gap") == []


def test_missed_morning_raises_inactivity_before_noon(town):
    # Asleep at 23:00 on day 23, then nothing but standby until the evening of day 24.
    df = edit(town, "h3", at(23, 23), at(24, 20), pl.lit(STANDBY))
    findings = replay(df)
    (f,) = raised(findings, "inactivity", "h3")
    assert local(f.started_at) == at(23, 23)
    assert at(24, 7, 30) < local(f.detected_at) <= at(24, 11, 30)
    assert "No activity since 23:00 yesterday" in f.reason_en
    assert "of the last" in f.reason_en and "过去" in f.reason_zh
    assert f.evidence["days_active_in_window"] >= f.evidence["days_compared"] - 1
    # Resolved by the first activity afterwards.
    assert any(x.event == "resolved" and x.finding_id == f.finding_id for x in findings)


def test_a_quiet_afternoon_at_home_is_not_inactivity_but_a_missed_one_is(town):
    df = edit(town, "h5", at(24, 11), at(25, 2), pl.lit(STANDBY))
    (f,) = raised(replay(df), "inactivity", "h5")
    assert local(f.detected_at) - at(24, 11) <= timedelta(hours=6)


def test_skipping_a_couple_of_short_uses_is_not_inactivity(town):
    # h4's afternoons are quiet but for tea at 15:00 and 16:30; one day it has no tea.
    quiet = (pl.col("ts").dt.hour() >= 12) & (pl.col("ts").dt.hour() < 18)
    tea = pl.col("ts").dt.strftime("%H:%M").is_in(["15:00", "16:30"])
    h4 = pl.col("household_id") == "h4"
    df = town.with_columns(
        kwh=pl.when(h4 & tea).then(0.35).when(h4 & quiet).then(STANDBY).otherwise(pl.col("kwh"))
    )
    df = edit(df, "h4", at(24, 12), at(24, 18), pl.lit(STANDBY))
    assert raised(replay(df), "inactivity", "h4") == []
    # Counting any use at all as the routine would have called out the duty room.
    (f,) = raised(replay(df, config=EngineConfig(inactivity_busy_slots=1)), "inactivity", "h4")
    assert at(24, 12) < local(f.detected_at) < at(24, 18)


def test_an_alarm_that_clears_by_itself_asks_for_a_busier_window_next_time(town):
    long_first = edit(town, "h5", at(20, 11), at(21, 2), pl.lit(STANDBY))
    (first,) = raised(replay(long_first), "inactivity", "h5")
    # The same quiet, but the resident is up again an hour after the alarm.
    back = local(first.detected_at) + timedelta(hours=1)
    short_first = edit(town, "h5", at(20, 11), back, pl.lit(STANDBY))
    for df, busy in ((long_first, 1.5), (short_first, 2.0)):
        df = edit(df, "h5", at(24, 11), at(25, 2), pl.lit(STANDBY))
        second = [f for f in raised(replay(df), "inactivity", "h5") if local(f.started_at) > back]
        assert len(second) == 1
        assert second[0].evidence["busy_hours"] == busy
        assert local(second[0].detected_at) - at(24, 11) <= timedelta(hours=8)


def test_the_duty_rooms_outcome_of_an_alarm_teaches_the_engine(town):
    from lianxin.engine.core import Engine

    df = edit(town, "h5", at(20, 11), at(21, 2), pl.lit(STANDBY))  # a long silence: no
    df = edit(df, "h5", at(24, 11), at(25, 2), pl.lit(STANDBY))  # self-clearing alarm
    frame = df.with_columns(pl.col("ts").dt.replace_time_zone("Asia/Shanghai"))
    cut = at(22, 0).replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    eng = Engine(EngineConfig())
    (first,) = raised(eng.step(frame.filter(pl.col("ts") < cut)), "inactivity", "h5")
    blob = eng.snapshot()

    def next_alarm_busy_hours(*outcomes):
        eng = Engine.restore(blob)
        for outcome in outcomes:
            eng.feedback(
                pl.DataFrame(
                    {
                        "household_id": ["h5"],
                        "kind": ["inactivity"],
                        "started_at": [first.started_at],
                        "outcome": [outcome],
                    }
                )  # fmt: skip
            )
        (second,) = raised(eng.step(frame.filter(pl.col("ts") >= cut)), "inactivity", "h5")
        return second.evidence["busy_hours"]

    assert next_alarm_busy_hours() == 1.5
    assert next_alarm_busy_hours("real_emergency") == 1.5
    assert next_alarm_busy_hours("false_alarm") == 2.0
    assert next_alarm_busy_hours("resident_fine", "false_alarm") == 2.0  # one alarm counts once


def test_data_gap_is_reported_and_never_as_inactivity_or_no_power(town):
    df = drop(town, "h0", at(20, 22), at(21, 16))  # the whole night and morning
    findings = replay(df)
    (f,) = raised(findings, "data_gap", "h0")
    assert local(f.started_at) == at(20, 22)
    assert local(f.detected_at) == at(21, 0)  # two hours without data
    assert raised(findings, "inactivity", "h0") == []
    assert raised(findings, "no_power", "h0") == []
    assert f.severity == "info" and "not a sign of inactivity" in f.reason_en


def test_appliance_left_on_raises_high_load_within_two_hours(town):
    df = edit(town, "h1", at(22, 1), at(22, 7), pl.col("kwh") + 1.0)  # +2 kW
    findings = replay(df)
    (f,) = raised(findings, "high_load", "h1")
    assert local(f.started_at) == at(22, 1)
    assert local(f.detected_at) <= at(22, 3)
    assert "kW" in f.reason_en and "千瓦" in f.reason_zh


def test_water_flowing_for_hours_is_high_load_and_water_use_counts_as_activity(town):
    h = town.filter(pl.col("household_id") == "h2")
    water = h.with_columns(meter_kind=pl.lit("water"), kwh=pl.lit(0.0))
    water = edit(water, "h2", at(22, 13), at(22, 19), pl.lit(0.01))  # 20 l/h without a break
    elec = h.with_columns(meter_kind=pl.lit("electricity"))
    # One column for both kinds is `quantity` (kWh; m³ for water): a `kwh` column holds kWh only.
    findings = replay(pl.concat([elec, water]).rename({"kwh": "quantity"}))
    (f,) = raised(findings, "high_load", "h2")
    assert f.evidence["meter_kind"] == "water"
    assert at(22, 16) <= local(f.detected_at) <= at(22, 17)


def test_water_use_alone_keeps_a_home_from_inactivity(town):
    h = town.filter(pl.col("household_id") == "h2")
    elec = edit(h, "h2", at(23, 23), at(24, 20), pl.lit(STANDBY))
    water = h.with_columns(meter_kind=pl.lit("water"), kwh=pl.lit(0.0))
    water = edit(water, "h2", at(24, 7), at(24, 8), pl.lit(0.02))  # a morning shower
    both = pl.concat([elec.with_columns(meter_kind=pl.lit("electricity")), water])
    findings = replay(both.rename({"kwh": "quantity"}))
    assert [f for f in raised(findings, "inactivity") if local(f.detected_at) < at(24, 8)] == []
    late = [f for f in raised(findings, "inactivity") if local(f.detected_at) >= at(24, 8)]
    assert all(local(f.started_at) >= at(24, 8) for f in late)


def test_a_kwh_column_with_water_rows_is_refused_by_name(town):
    h = town.filter(pl.col("household_id") == "h2").head(4)
    water = h.with_columns(meter_kind=pl.lit("water"))
    with pytest.raises(InputError, match="column 'kwh' holds kWh, but there are water rows"):
        replay(pl.concat([h.with_columns(meter_kind=pl.lit("electricity")), water]))


def test_prepaid_cutoff_is_its_own_finding_not_no_power(town):
    df = edit(town, "h4", at(22, 10), at(22, 18), pl.lit(0.0))
    events = pl.DataFrame(
        {
            "household_id": ["h4", "h4"],
            "ts": [at(22, 10), at(22, 18)],
            "event": ["relay_open", "relay_close"],
        }  # fmt: skip
    )
    findings = replay(df, events=events)
    (f,) = raised(findings, "prepaid_cutoff", "h4")
    assert f.severity == "critical" and "prepaid" in f.reason_en
    assert raised(findings, "no_power") == [] and raised(findings, "inactivity") == []


@pytest.mark.parametrize("silent", [False, True])
def test_prepaid_cutoff_without_its_relay_close_stays_a_cutoff_across_a_silent_spell(town, silent):
    # The relay opened; the meter reads zero, then (silent=True) says nothing for three
    # hours, then zero again: still the cut-off, never a power cut of its own.
    df = edit(town, "h4", at(22, 10), at(22, 20), pl.lit(0.0))
    if silent:
        df = drop(df, "h4", at(22, 13), at(22, 16))
    events = pl.DataFrame({"household_id": ["h4"], "ts": [at(22, 10)], "event": ["relay_open"]})
    findings = replay(df, events=events)
    assert len(raised(findings, "prepaid_cutoff", "h4")) == 1
    assert raised(findings, "no_power") == []


def test_prepaid_cutoff_clears_when_normal_use_returns_without_a_relay_close(town):
    # Many meters report the relay opening but never its closing: use coming back says it.
    df = edit(town, "h4", at(22, 10), at(22, 13), pl.lit(0.0))
    events = pl.DataFrame({"household_id": ["h4"], "ts": [at(22, 10, 2)], "event": ["relay_open"]})
    findings = replay(df, events=events)
    (f,) = raised(findings, "prepaid_cutoff", "h4")
    [cleared] = [x for x in findings if x.event == "resolved" and x.finding_id == f.finding_id]
    assert at(22, 13) <= local(cleared.detected_at) <= at(22, 14)
    assert raised(findings, "no_power") == []


def test_low_prepaid_balance_raises_payment_risk_and_a_payment_clears_it(town):
    payments = pl.DataFrame(
        {
            "household_id": ["h0", "h0"],
            "ts": [at(20, 12), at(22, 9)],
            "balance": [4.0, None],
            "amount": [None, 100.0],
        }  # fmt: skip
    )
    findings = replay(town, payments=payments)
    (f,) = raised(findings, "payment_risk", "h0")
    assert f.evidence["days_left"] < 3
    assert any(x.event == "resolved" and x.finding_id == f.finding_id for x in findings)
    assert raised(findings, "prepaid_cutoff") == []


def test_voltage_events_raise_voltage(town):
    events = pl.DataFrame(
        {
            "household_id": "h3",
            "ts": [at(22, 19, m) for m in (1, 7, 13)],
            "event": "voltage_low",
        }  # fmt: skip
    )
    findings = replay(town, events=events)
    kinds = [(f.kind, f.severity) for f in raised(findings, "voltage", "h3")]
    assert kinds == [("voltage", "info"), ("voltage", "warning")]


def test_several_days_of_much_lower_use_is_a_consumption_shift():
    df = home("h", 40, seed=3)
    df = edit(df, "h", at(30, 0), at(40, 0), pl.lit(STANDBY))
    findings = replay(df)
    shifts = raised(findings, "consumption_shift", "h")
    assert len(shifts) == 1 and shifts[0].evidence["direction"] == "down"


def test_quiet_hours_and_away_periods_hold_inactivity_back(town):
    df = edit(town, "h3", at(23, 23), at(24, 20), pl.lit(STANDBY))
    away = pl.DataFrame(
        {
            "household_id": ["h3"],
            "away_from": [at(23, 20).isoformat()],
            "away_to": [at(24, 21).isoformat()],
        }  # fmt: skip
    )
    assert raised(replay(df, settings=away), "inactivity", "h3") == []
    late = pl.DataFrame({"household_id": ["h3"], "quiet_start": ["22:00"], "quiet_end": ["12:00"]})
    (f,) = raised(replay(df, settings=late), "inactivity", "h3")
    assert local(f.detected_at) >= at(24, 12)


def test_high_sensitivity_speaks_sooner_and_low_later(town):
    df = edit(town, "h5", at(24, 11), at(25, 2), pl.lit(STANDBY))
    got = {}
    for level in ("high", "normal", "low"):
        settings = pl.DataFrame({"household_id": ["h5"], "sensitivity": [level]})
        (got[level],) = raised(replay(df, settings=settings), "inactivity", "h5")
    assert got["high"].detected_at < got["normal"].detected_at < got["low"].detected_at


def test_a_home_with_one_day_of_history_uses_population_priors():
    others = pl.concat([home(f"p{i}", 21, seed=10 + i) for i in range(6)])
    new = home("new", 2, seed=99, start=START + timedelta(days=19))
    new = edit(new, "new", at(19, 23), at(21, 0), pl.lit(STANDBY))
    from lianxin.engine.config import EngineConfig
    from lianxin.engine.core import Engine

    eng = Engine(EngineConfig())
    findings = replay(pl.concat([others, new]), engine=eng)
    assert eng.history_days("new") == 1  # its second day has not ended yet
    assert eng.history_days("p0") == 20
    (f,) = raised(findings, "inactivity", "new")
    assert at(20, 6) <= local(f.detected_at) <= at(20, 13)
    assert "new" in f.reason_en and f.evidence["history_days"] <= 2
    hist = eng.history().filter(pl.col("household_id") == "new")
    assert hist["personal_share"][0] < 0.3


def test_safety_floor_never_later_than_the_fixed_rule_unless_the_home_shows_such_spells(town):
    """With a routine so loose it would wait 20 h, a home whose history shows no quiet spell of
    12 h is still raised at 12 h; one that was once quiet for 15 h, only past that."""
    df = edit(town, "h2", at(24, 9, 30), at(25, 12), pl.lit(STANDBY))
    df = edit(df, "h3", at(10, 16), at(11, 0), pl.lit(STANDBY))  # 16:00 -> 07:00: 15 h
    df = edit(df, "h3", at(24, 9, 30), at(25, 12), pl.lit(STANDBY))
    findings = raised(replay(df, config=EngineConfig(inactivity_slack_h=30)), "inactivity")
    (f,) = [f for f in findings if f.household_id == "h2"]
    assert f.detected_at - f.started_at == timedelta(hours=12)
    assert "never quiet for longer than 8 h" in f.reason_en and "从未超过8小时" in f.reason_zh
    late = [f for f in findings if f.household_id == "h3" and local(f.started_at) >= at(24, 0)]
    (g,) = late
    assert timedelta(hours=15) < g.detected_at - g.started_at <= timedelta(hours=16)
    assert g.evidence["longest_quiet_hours"] == 15


def test_expected_first_activity_speaks_once_the_usual_wake_up_has_passed(town):
    """With the expected-first-activity model on, a missed morning is raised once the home's
    usual first activity after 23:00 (by 07:30 on every past weekday) plus the margin has
    passed, saying so; the ordinary days raise nothing."""
    cfg = EngineConfig(inactivity_anchor=True, inactivity_anchor_margin_h=0.5)
    assert [f for f in raised(replay(town, config=cfg)) if local(f.detected_at) >= at(7, 0)] == []
    df = edit(town, "h3", at(23, 23), at(24, 20), pl.lit(STANDBY))
    (f,) = raised(replay(df, config=cfg), "inactivity", "h3")
    assert local(f.started_at) == at(23, 23)
    # the latest usual first activity: the end of 07:00-07:30, 8.5 h after 23:00 (pooled
    # with spells that began up to an hour later: 9 h), then more than the half-hour margin
    assert f.evidence["expected_activity_within_hours"] == 9.0
    assert local(f.detected_at) == at(24, 9, 0)
    assert "in use again by 08:00" in f.reason_en and "08:00前已恢复用电" in f.reason_zh
    (plain,) = raised(replay(df), "inactivity", "h3")  # the routine path alone: no sooner
    assert local(plain.detected_at) >= local(f.detected_at)


def test_judged_by_day_type_a_missed_weekday_morning_is_raised_sooner(town):
    """A home that lies in until noon at weekends: judged against all past days its weekday
    mornings look loose; judged against weekdays only (the setting shipped off) a missed
    Thursday morning is raised sooner, and its ordinary lie-ins raise nothing."""
    df = town
    for d in range(DAYS):
        if d % 7 >= 5:  # START is a Monday
            df = edit(df, "h3", at(d, 0), at(d, 12), pl.lit(STANDBY))
    cfg = EngineConfig(
        inactivity_day_type=True, inactivity_quiet_days=0, inactivity_quiet_share=0.06
    )
    assert [f for f in raised(replay(df, config=cfg)) if local(f.detected_at) >= at(7, 0)] == []
    missed = edit(df, "h3", at(23, 23), at(24, 20), pl.lit(STANDBY))  # a Thursday
    late = lambda fs: [f for f in fs if local(f.started_at) >= at(7, 0)]  # noqa: E731
    (typed,) = late(raised(replay(missed, config=cfg), "inactivity", "h3"))
    (plain,) = late(raised(replay(missed), "inactivity", "h3"))  # the first week's lie-ins aside
    assert local(typed.started_at) == local(plain.started_at) == at(23, 23)
    assert local(typed.detected_at) < local(plain.detected_at)


def test_low_use_raises_a_spell_below_every_past_day_in_those_hours_sooner(town):
    """With the low-use path on (shipped off), a home at standby from its morning outing on,
    through hours in which it drew more on every past day, is raised once the spell is 3 h old
    and its clock window is busy on the past days; before the threshold path would speak. Its
    ordinary days raise nothing."""
    cfg = EngineConfig(inactivity_low_use=True)
    assert [f for f in raised(replay(town, config=cfg)) if local(f.detected_at) >= at(7, 0)] == []
    df = edit(town, "h3", at(24, 9, 30), at(25, 12), pl.lit(STANDBY))
    (f,) = raised(replay(df, config=cfg), "inactivity", "h3")
    (plain,) = raised(replay(df), "inactivity", "h3")
    assert local(f.started_at) == local(plain.started_at)
    assert at(24, 12) <= local(f.detected_at) <= at(24, 13)
    assert local(f.detected_at) < local(plain.detected_at)
    assert "this home was in use for at least" in f.reason_en


def test_odds_floor_raises_what_a_holiday_in_the_history_would_hold_back_to_the_cap(town):
    """Four days away leave four past days quiet through every clock window, so the clock
    window lets a missed day pass and only the 20 h cap would speak (the holiday's spells are
    longer than any miss). Half hour by half hour, quiet from 09:30 to 19:30 is still about
    1 in 10^12 for this home: the odds floor raises it then, saying so."""
    df = edit(town, "h3", at(12, 0), at(16, 0), pl.lit(STANDBY))
    df = edit(df, "h3", at(24, 9, 30), at(25, 12), pl.lit(STANDBY))
    late = lambda fs: [f for f in fs if local(f.started_at) >= at(20, 0)]  # noqa: E731
    (f,) = late(raised(replay(df), "inactivity", "h3"))
    assert local(f.started_at) == at(24, 9, 30) and local(f.detected_at) == at(24, 19, 30)
    assert f.evidence["log10_chance"] < -12
    assert "Judged half hour by half hour against its last 24 days" in f.reason_en
    assert "about 1 in 10^12" in f.reason_en and "10^12分之一" in f.reason_zh
    off = EngineConfig(inactivity_odds_log10_p=0)
    (g,) = late(raised(replay(df, config=off), "inactivity", "h3"))
    assert local(g.detected_at) == at(25, 6, 0)  # the cap


@pytest.mark.parametrize("days", [1, 2, 27, 28, 40])
@pytest.mark.parametrize("homes", [37, 4100])
def test_the_day_counts_equal_counting_each_half_hour_of_each_day(days, homes):
    # Inactivity's odds rest on these counts: on how many past days each half hour was seen
    # and active. Counted by unpacking the bits for a few homes, bit-sliced for many (4100);
    # both against counting bit by bit.
    import numpy as np

    from lianxin.engine.detectors.inactivity import BIT_SLICED_FROM, _slot_counts

    assert 37 < BIT_SLICED_FROM <= 4100
    rng = np.random.default_rng(days)
    words = rng.integers(0, 2**63, size=(days, homes), dtype=np.uint64)
    words[:, 0] = 0  # a home never seen
    words[:, 1] = np.uint64(2**48 - 1)  # one seen in every half hour of every day
    words |= np.uint64(1) << np.uint64(63)  # bits above the 48 half hours do not count
    act = words & rng.integers(0, 2**63, size=(days, homes), dtype=np.uint64)
    for got, w in zip(_slot_counts(words, act), (words, act), strict=True):
        bits = (w[:, :, None] >> np.arange(48, dtype=np.uint64)) & np.uint64(1)
        assert np.array_equal(got, bits.sum(axis=0))


def test_the_day_counts_table_brought_forward_day_by_day_equals_counting_afresh(monkeypatch):
    # A small engine keeps every home's day counts in a table brought forward once a day (the
    # day that came in added, the one that left taken away). On 120 days of the real sample,
    # each day's table equals counting every home's past days afresh.
    import numpy as np

    from lianxin.engine.detectors import inactivity

    real, days = inactivity._day_keys, {"forward": 0, "afresh": 0}

    def checked(eng, today):
        held = eng._memo.get("inactivity_day_keys")
        if held is not None and held[0] == (eng.n, today):
            return held[1]
        days["forward" if held is not None and held[0] == (eng.n, today - 1) else "afresh"] += 1
        keys = real(eng, today)
        past = (today - np.arange(1, eng.D - 1)) % eng.D
        n_seen, n_act = inactivity._slot_counts(
            eng.a.seen_bits[:, past].T, eng.a.act_bits[:, past].T
        )
        assert np.array_equal(keys, n_seen.astype(np.uint16) * 256 + n_act), today
        return keys

    monkeypatch.setattr(inactivity, "_day_keys", checked)
    sample = pl.read_parquet(Path(__file__).parents[1] / "data" / "lcl_sample.parquet")
    sample = sample.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    replay(
        sample.filter(pl.col("ts") < pl.col("ts").min() + timedelta(days=120)), tz="Europe/London"
    )
    assert days["forward"] >= 50, days  # brought forward on most days, not counted afresh
