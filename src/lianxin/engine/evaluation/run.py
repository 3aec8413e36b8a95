"""One evaluation run: inject incidents into real readings, replay the engine and the fixed
12-hour rule over the same data, score both, and lay the figures side by side."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import polars as pl

from lianxin.engine.evaluation.baseline import fixed_rule
from lianxin.engine.evaluation.data import choose_homes, clip_weeks, utc_instants
from lianxin.engine.evaluation.incidents import (
    ACTIVE_FACTOR,
    ACTIVE_MARGIN_KW,
    STANDBY_QUANTILE,
    STANDBY_WEEKS,
    assign_areas,
    home_profiles,
    inject,
    plan_incidents,
    reference_times,
)
from lianxin.engine.evaluation.scoring import (
    FINDING_KINDS,
    INCIDENT_ORDER,
    Truth,
    real_windows,
    score,
)
from lianxin.engine.findings import Finding

Detector = Callable[..., list[Finding]]


def evaluate(
    readings: pl.DataFrame,
    *,
    seed: int = 1,
    homes: int | None = None,
    weeks: float | None = None,
    weeks_warmup: float = 4,
    tz: str = "Europe/London",
    area_size: int = 8,
    slot_days: float = 14,
    grid_outage_rate: float = 0.08,
    grace: timedelta = timedelta(hours=1),
    after: timedelta = timedelta(hours=24),
    rule_hours: float = 12,
    detector: Detector | None = None,
    log: Callable[[str], None] = lambda _msg: None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Run the whole evaluation on real readings (household_id, ts naive UTC, kwh).

    `detector` defaults to the engine's causal replay; it is called with readings and events
    whose `ts` are UTC instants (timezone-aware) and `tz`, the zone of the homes' local time.
    The result holds no timings, so one seed gives one result.
    """
    if detector is None:
        from functools import partial

        from lianxin.engine.replay import replay

        detector = partial(replay, progress=progress)
    clock = time.perf_counter()
    original = clip_weeks(choose_homes(readings, homes, seed), weeks)
    if original.is_empty():
        raise ValueError("no readings left to evaluate on")
    profiles = home_profiles(original, timedelta(weeks=weeks_warmup))
    ids = profiles.get_column("household_id").to_list()
    topology = assign_areas(ids, area_size, seed)
    plan = plan_incidents(
        original,
        profiles,
        topology,
        seed=seed,
        slot_days=slot_days,
        grid_outage_rate=grid_outage_rate,
    )
    injected = inject(original, profiles, plan.touched)
    refs = reference_times(original, profiles, plan)
    absences, real_gaps, zero_runs = real_windows(original, profiles)
    truth = Truth(
        incidents=plan.incidents.join(refs, on="incident_id", how="left"),
        touched=plan.touched,
        profiles=profiles,
        topology=topology,
        absences=absences,
        real_gaps=real_gaps,
        zero_runs=zero_runs,
        grace=grace,
        after=after,
    )
    interval_h = profiles.get_column("step_h").mode().min()
    log(
        f"prepared {original.height:,} readings of {len(ids)} homes, "
        f"{plan.incidents.height} incidents in {time.perf_counter() - clock:.1f} s"
    )

    clock = time.perf_counter()
    engine_findings = detector(
        # Readings and events go in as UTC instants, as they are held here: no round trip
        # through local time, so no guess about the repeated autumn hour. tz only says which
        # local hours the engine learns routines in.
        utc_instants(injected),
        topology=topology,
        events=utc_instants(plan.events),
        tz=tz,
    )
    log(f"engine replay: {len(engine_findings)} findings in {time.perf_counter() - clock:.1f} s")
    clock = time.perf_counter()
    rule_findings = fixed_rule(injected, profiles, rule_hours)
    log(f"fixed rule: {len(rule_findings)} findings in {time.perf_counter() - clock:.1f} s")

    engine = score(engine_findings, truth)
    rule = score(rule_findings, truth)
    return {
        "config": {
            "seed": seed,
            "homes": len(ids),
            "weeks": weeks,
            "weeks_warmup": weeks_warmup,
            "tz": tz,
            "timestamps": "input ts treated as UTC; the engine gets them as UTC instants",
            "area_size": area_size,
            "slot_days": slot_days,
            "grid_outage_rate": grid_outage_rate,
            "grace_h": grace.total_seconds() / 3600,
            "after_incident_h": after.total_seconds() / 3600,
            "standby": f"q{STANDBY_QUANTILE:g} of non-zero readings (warm-up, then the median "
            f"weekly value of the {STANDBY_WEEKS} weeks before); use above standby = "
            f"> {ACTIVE_FACTOR:g} x standby + {ACTIVE_MARGIN_KW * 1000:g} W",
            "fixed_rule": f"no consumption above the standby level for {rule_hours:g} h "
            f"-> inactivity",
        },
        "data": {
            "readings": original.height,
            "homes": len(ids),
            "areas": topology.get_column("transformer_area").n_unique(),
            "first": original.get_column("ts").min().isoformat(),
            "last": original.get_column("ts").max().isoformat(),
            "injected_readings": injected.height,
            "events": plan.events.height,
        },
        "incident_counts": dict(plan.incidents.group_by("kind").len().sort("kind").iter_rows()),
        "targets": targets(engine, rule, interval_h),
        "engine": engine,
        "fixed_rule": rule,
        "incidents": _incident_detail(truth.incidents, engine, rule),
    }


def targets(engine: dict, rule: dict, interval_h: float) -> list[dict]:
    """The issue's targets, each with the figure measured and whether it is met."""
    inc, fa = engine["incidents"], engine["false_alarms"]
    r_inc, r_fa = rule["incidents"], rule["false_alarms"]
    checks = engine["checks"]

    def at_least(x, bound):
        return x is not None and x >= bound

    def at_most(x, bound):
        return x is not None and bound is not None and x <= bound

    rows = [
        ("no_power (zeros) recall >= 0.98", inc["supply_lost"]["recall"],
         at_least(inc["supply_lost"]["recall"], 0.98)),
        ("no_power (power-off events) recall >= 0.98", inc["power_off_events"]["recall"],
         at_least(inc["power_off_events"]["recall"], 0.98)),
        (f"no_power median latency <= one interval ({interval_h:g} h)",
         inc["supply_lost"]["latency_h_median"],
         at_most(inc["supply_lost"]["latency_h_median"], interval_h)),
        ("inactivity recall >= 0.9", inc["missed_routine"]["recall"],
         at_least(inc["missed_routine"]["recall"], 0.9)),
        ("inactivity median latency <= 4 h", inc["missed_routine"]["latency_h_median"],
         at_most(inc["missed_routine"]["latency_h_median"], 4)),
        ("inactivity median latency < the fixed rule's", inc["missed_routine"]["latency_h_median"],
         at_most(inc["missed_routine"]["latency_h_median"],
                 (r_inc["missed_routine"]["latency_h_median"] or 0) - 1e-9)),
        ("inactivity false alarms <= half the fixed rule's",
         fa["by_kind"]["inactivity"]["per_home_month"],
         at_most(fa["by_kind"]["inactivity"]["per_home_month"],
                 (r_fa["by_kind"]["inactivity"]["per_home_month"] or 0) / 2)),
        ("high_load recall >= 0.85", inc["appliance_on"]["recall"],
         at_least(inc["appliance_on"]["recall"], 0.85)),
        ("high_load median latency <= 2 h", inc["appliance_on"]["latency_h_median"],
         at_most(inc["appliance_on"]["latency_h_median"], 2)),
        ("high_load false alarms <= 0.3 / home-month", fa["by_kind"]["high_load"]["per_home_month"],
         at_most(fa["by_kind"]["high_load"]["per_home_month"], 0.3)),
        ("data_gap recall >= 0.98", inc["silent_meter"]["recall"],
         at_least(inc["silent_meter"]["recall"], 0.98)),
        ("no data gap reported as inactivity/no_power",
         checks["data_gaps_reported_as_inactivity_or_no_power"],
         checks["data_gaps_reported_as_inactivity_or_no_power"] == 0),
        ("every grid outage found", inc["grid_outage"]["recall"],
         inc["grid_outage"]["n"] > 0 and inc["grid_outage"]["recall"] == 1.0),
        ("no individual no_power inside a grid outage",
         checks["grid_outages_with_individual_no_power"],
         checks["grid_outages_with_individual_no_power"] == 0),
        ("all kinds: false alarms <= 1 / home-month", fa["total"]["per_home_month"],
         at_most(fa["total"]["per_home_month"], 1)),
    ]  # fmt: skip
    return [{"target": t, "value": v, "met": bool(ok)} for t, v, ok in rows]


def _incident_detail(incidents: pl.DataFrame, engine: dict, rule: dict) -> list[dict]:
    e = {r["incident_id"]: r for r in engine.pop("per_incident")}
    f = {r["incident_id"]: r for r in rule.pop("per_incident")}
    out = []
    for row in incidents.sort("incident_id").iter_rows(named=True):
        iid = row["incident_id"]
        out.append(
            {
                "incident_id": iid,
                "kind": row["kind"],
                "expects": row["expects"],
                "household_id": row["household_id"],
                "transformer_area": row["transformer_area"],
                "homes": row["n_homes"],
                "start": row["start"].isoformat(),
                "end": row["end"].isoformat(),
                "ref": row["ref"].isoformat() if row["ref"] else None,
                "kw": row["kw"] or None,
                "engine_detected_at": e[iid]["detected_at"],
                "engine_latency_h": e[iid]["latency_h"],
                "engine_findings_meanwhile": e[iid]["findings_meanwhile"],
                "rule_detected_at": f[iid]["detected_at"],
                "rule_latency_h": f[iid]["latency_h"],
            }
        )
    return out


def format_table(result: dict) -> str:
    """The side-by-side table printed by `lianxin eval`."""
    e, r = result["engine"], result["fixed_rule"]
    c = result["config"]
    lines = [
        f"lianxin eval: {result['data']['homes']} homes, {result['data']['readings']:,} readings "
        f"{result['data']['first'][:10]}..{result['data']['last'][:10]}, seed {c['seed']}, "
        f"warm-up {c['weeks_warmup']:g} weeks, tz {c['tz']} (input ts treated as UTC)",
        "",
        f"{'incident -> finding':34} {'n':>4} | {'engine':^26} | {'fixed 12 h rule':^26}",
        f"{'':34} {'':>4} | {'recall':>8} {'med h':>8} {'p90 h':>8} | "
        f"{'recall':>8} {'med h':>8} {'p90 h':>8}",
    ]
    for kind in INCIDENT_ORDER:
        a, b = e["incidents"][kind], r["incidents"][kind]
        rule_cells = _cells(b) if b["expects"] == "inactivity" else f"{'-':>8} {'-':>8} {'-':>8}"
        lines.append(f"{kind + ' -> ' + a['expects']:34} {a['n']:>4} | {_cells(a)} | {rule_cells}")
    ef, rf = e["false_alarms"], r["false_alarms"]
    lines += [
        "",
        f"false alarms per home-month ({ef['clean_home_months']:.1f} clean home-months)",
    ]
    for kind in FINDING_KINDS:
        a, b = ef["by_kind"][kind], rf["by_kind"][kind]
        if a["count"] == 0 and b["count"] == 0:
            continue
        lines.append(
            f"  {kind:32} {a['per_home_month']:>8.3f} ({a['count']:>4}) | "
            f"{b['per_home_month']:>8.3f} ({b['count']:>4})"
        )
    for label, key in (("all kinds", "total"), ("warning or critical", "warning_or_critical")):
        a, b = ef[key], rf[key]
        lines.append(
            f"  {label:32} {a['per_home_month']:>8.3f} ({a['count']:>4}) | "
            f"{b['per_home_month']:>8.3f} ({b['count']:>4})"
        )
    re_, rr = e["real_events"], r["real_events"]
    ec, rc = e["checks"], r["checks"]
    lines += [
        "",
        f"real absences (no use above standby >= 24 h, untouched data): {re_['absences']}; "
        f"inactivity alerts inside them (not false alarms): engine "
        f"{re_['inactivity_inside_absences']}, rule {rr['inactivity_inside_absences']}",
        f"real data gaps: {re_['real_gaps']} (data_gap inside: {re_['data_gap_inside_real_gaps']});"
        f" real zero runs: {re_['zero_runs']} (no_power inside: "
        f"{re_['no_power_inside_zero_runs']})",
        f"silent meters reported as inactivity/no_power: engine "
        f"{ec['data_gaps_reported_as_inactivity_or_no_power']}, rule "
        f"{rc['data_gaps_reported_as_inactivity_or_no_power']}",
        f"grid outages with an individual no_power: engine "
        f"{ec['grid_outages_with_individual_no_power']} "
        f"({ec['individual_no_power_in_grid_outages']} findings)",
        "",
        "targets (engine):",
    ]
    for t in result["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:g}"
        lines.append(f"  [{'x' if t['met'] else ' '}] {t['target']}: {value}")
    return "\n".join(lines)


def _cells(s: dict) -> str:
    def num(x):
        return f"{x:>8.2f}" if x is not None else f"{'-':>8}"

    return f"{num(s['recall'])} {num(s['latency_h_median'])} {num(s['latency_h_p90'])}"


def format_misses(result: dict, limit: int) -> str:
    """For whoever tunes the engine: its missed incidents (with what it said meanwhile) and
    where its false alarms are, `limit` examples of each."""
    lines = ["missed incidents (engine), UTC:"]
    missed = [i for i in result["incidents"] if i["engine_detected_at"] is None]
    for kind in INCIDENT_ORDER:
        these = [i for i in missed if i["kind"] == kind]
        if not these:
            continue
        lines.append(f"  {kind} -> {these[0]['expects']}: {len(these)} missed")
        for i in these[:limit]:
            said = ", ".join(i["engine_findings_meanwhile"]) or "nothing"
            lines.append(
                f"    {i['incident_id']} {i['household_id'] or i['transformer_area']} "
                f"{i['start']}..{i['end']} (ref {i['ref']}); said: {said}"
            )
    lines.append("false alarms (engine), UTC:")
    alarms = result["engine"]["false_alarm_list"]
    for kind in FINDING_KINDS:
        these = [a for a in alarms if a["kind"] == kind]
        if not these:
            continue
        homes: dict[str, int] = {}
        for a in these:
            homes[a["subject"]] = homes.get(a["subject"], 0) + 1
        worst = sorted(homes.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        lines.append(
            f"  {kind}: {len(these)}; most at " + ", ".join(f"{h} ({n})" for h, n in worst)
        )
        for a in these[:: max(1, len(these) // limit)][:limit]:
            lines.append(
                f"    {a['subject']} started {a['started_at']} detected {a['detected_at']}"
            )
    return "\n".join(lines)
