"""Engine settings: every number a detector compares against, named after the rule it sets."""

from __future__ import annotations

from dataclasses import dataclass, field

from lianxin.meterdata import deployment_zone

# Sensitivity scales the slack a detector allows before it speaks: high = speak sooner.
SENSITIVITY = {"low": 1.5, "normal": 1.0, "high": 0.7}


@dataclass(frozen=True)
class EngineConfig:
    tz: str = field(default_factory=deployment_zone)  # local time of routines and naive ts
    # The routine is learned from the last `history_days` local days, one ring slot per day.
    history_days: int = 28
    # Below this many days of a slot's history the population prior weighs as much as the home.
    prior_weight_days: float = 5.0
    # Activity: a reading above standby * activity_factor + activity_margin_kw.
    activity_factor: float = 1.25
    activity_margin_kw: float = 0.05
    # Inactivity fires when the current quiet spell exceeds the `inactivity_quantile` of the
    # quiet spells this home showed at this hour, plus slack; never before the floor.
    inactivity_quantile: float = 0.75
    inactivity_slack_h: float = 1.5
    inactivity_floor_h: float = 4.0
    # The safety floor: a quiet spell longer than the fixed rule's (scaled by sensitivity) and
    # longer than any in the home's history, or longer than the cap, is always raised.
    inactivity_rule_h: float = 12.0
    inactivity_cap_h: float = 20.0
    # ... and only if on at most `inactivity_quiet_days` of the past days (with data) this home
    # was also not busy through the same clock window (one more at high sensitivity): busy =
    # active in at least `inactivity_busy_slots` half hours of it (one kettle is no routine).
    # Homes with fewer than `inactivity_min_days` such days rely on the threshold alone.
    inactivity_quiet_days: int = 1
    inactivity_busy_slots: int = 3
    # Each inactivity of about the last month that cleared by itself (activity within
    # `inactivity_self_clear_h` of the alarm) asks this many more busy half hours of the home:
    # its routine is looser than learned. A long silence (a real incident) asks nothing more.
    inactivity_self_clear_h: float = 4.0
    inactivity_busy_slots_per_alarm: float = 1.0
    # ... and moves the home's threshold this many hours later (its alarm budget).
    inactivity_h_per_alarm: float = 1.5
    # ... and only if quiet that long is this unlikely for the home, slot by slot (log10 of the
    # product over the spell's half hours of 1 - the share of days it was active then).
    inactivity_log10_p: float = 3.0
    # Off (see the note of issue 15): judging the threshold, the clock window and its
    # slot-by-slot odds against past days of today's type only (weekday or weekend), with an
    # alarm budget of `inactivity_quiet_share` quiet days per day compared (on top of
    # `inactivity_quiet_days`), moved along the same latency / false-alarm line on the tuning
    # half of `lianxin eval` (mean of 15 runs; today 4.35 h median, 0.51 false alarms per
    # home-month): by type with 0 + 0.06 x days 4.17 h and 0.67; with 1 + 0, 4.20 h and 0.79;
    # the window alone by type with 0 + 0.04 x days, 4.67 h and 0.53.
    inactivity_day_type: bool = False
    inactivity_quiet_share: float = 0.0
    inactivity_min_days: int = 3
    # The expected first activity (off: on the tuning half of `lianxin eval` it bought less
    # than half an hour of median latency for 40-170 % more false alarms; see the note of
    # issue 15): a spell is raised once it outlasts, by a margin (scaled by
    # sensitivity, plus the alarm budget's hours), the wait for the home's first activity after
    # that clock time on all but `inactivity_anchor_outliers` of the past days (at least
    # `inactivity_anchor_min_days` of them with data), and is at least `inactivity_anchor_min_h`.
    inactivity_anchor: bool = False
    inactivity_anchor_outliers: int = 0
    inactivity_anchor_min_days: int = 6
    inactivity_anchor_margin_h: float = 2.5
    inactivity_anchor_min_h: float = 2.0
    # ... learned from past days of the same type only (weekday or weekend).
    inactivity_anchor_day_type: bool = True
    # ... pooling spells that began up to this many half hours earlier or later.
    inactivity_anchor_pool: int = 2
    # Low use (off: see the note of issue 15): a spell of at least `inactivity_low_use_h`
    # (scaled by sensitivity) whose every complete hour drew less than on all but
    # `inactivity_low_use_days` of the past days (of at least 7 compared) in the same clock hours
    # (the spell's highest hourly mean x 1.1 + 20 W against each past day's highest) is raised
    # without waiting for the threshold, if the clock window says the home is usually busy by now.
    # On the tuning half of `lianxin eval` (mean of 15 runs, before the odds floor below) it
    # moved along the same latency / false-alarm line as the threshold does: 3.80 h median, 0.58
    # false alarms per home-month (then 4.35 h, 0.51); from 2 h with the odds floor, 3.92 h, 0.67.
    inactivity_low_use: bool = False
    inactivity_low_use_h: float = 3.0
    inactivity_low_use_days: int = 0
    # The odds floor: past its threshold, a spell that the clock window lets pass (more than
    # the allowed quiet past days) is raised anyway if its slot-by-slot odds (as above, over at
    # least `inactivity_odds_min_days` days with data) are below 10^-inactivity_odds_log10_p
    # (scaled by sensitivity; 0 = off). Chosen on the tuning half of `lianxin eval` (mean of 15
    # runs): the 90th percentile latency 12.33 -> 10.82 h (the fixed rule's: 11.5 h) for 0.51 ->
    # 0.55 false alarms per home-month; at 14, 11.15 h and 0.53; at 16, 11.58 h and 0.52. A lower
    # cap buys the same p90 dearer (cap 14 h: 11.07 h for 0.67).
    inactivity_odds_log10_p: float = 12.0
    inactivity_odds_min_days: int = 7
    # data_gap: no reading for this long (and at least `data_gap_intervals` intervals).
    data_gap_h: float = 2.0
    data_gap_intervals: int = 3
    # no_power from a meter whose readings are register differences (示值) of a coarse
    # resolution: a zero there means less than one resolution step was used, not no supply.
    # A zero run is read as a lost supply only once it is long enough that the home used less
    # than this on average (a fridge, a router and standby draw more than 10 W together).
    no_power_min_draw_kw: float = 0.01
    # high_load: above the slot's usual high (`high_load_quantile` of its hourly means; 1.0 =
    # the highest in the history) plus margin,
    # continuously for `high_load_min_h` hours with `high_load_mean_excess_kw` on average.
    high_load_quantile: float = 1.0
    high_load_margin_kw: float = 0.7
    high_load_min_h: float = 2.0
    high_load_mean_excess_kw: float = 1.0
    # (A per-home alarm budget, the margin raised by 0.3-1.0 kW for each alarm of about the
    # last month, did not pay on the tuning half of `lianxin eval`: it cut false alarms no
    # more per recall lost than a wider margin does; see the note of issue 15.)
    # Water or gas flowing in every interval for this long is a tap left on or a leak.
    flow_min_h: float = 3.0
    # grid_outage: at least this many homes and this share of a transformer area's reporting
    # homes lose power within `grid_window_intervals` of each other.
    grid_min_homes: int = 3
    grid_min_share: float = 0.5
    # consumption_shift: `shift_days` complete days in a row with a daily total beyond
    # `shift_factor` times (or below 1/shift_factor of) the median of the days before them.
    shift_days: int = 4
    shift_factor: float = 3.0
    shift_min_history_days: int = 14
    # payment_risk: the balance will run out within this many days at the usual daily use.
    payment_days_warning: float = 3.0
    price_per_kwh: float = 0.55
    # A missed payment: no payment for `missed_payment_factor` times the usual gap.
    missed_payment_factor: float = 1.6
    missed_payment_min_payments: int = 3
    # voltage: this many out-of-range events within a day make it a warning, fewer are info.
    voltage_warning_count: int = 3
