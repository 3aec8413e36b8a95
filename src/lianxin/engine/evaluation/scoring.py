"""Score findings against the injected incidents and the untouched data.

A hit is a raised finding of the expected kind for the incident's home (or transformer area)
detected after the incident's start (a finding at its very start has seen none of it) until
`grace` after its end; latency is counted from the
incident's reference time (see incidents.reference_times). A false alarm is a raised finding
after warm-up that is neither inside an incident window (start .. end + `after`) of its home nor
explained by the untouched data: inactivity inside a real absence (no use above standby for
>= 24 h), data_gap inside a real gap in the upstream data, no_power inside a real run of zero
readings. Those are counted apart. All times are naive UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta

import numpy as np
import polars as pl

from lianxin.engine.evaluation.incidents import EXPECTED_KIND, with_thresholds
from lianxin.engine.findings import Finding, Kind

MONTH = timedelta(days=365.25 / 12)
ABSENCE = timedelta(hours=24)
INCIDENT_ORDER = (
    "supply_lost",
    "power_off_events",
    "grid_outage",
    "missed_routine",
    "appliance_on",
    "silent_meter",
    "voltage_events",
)
FINDING_KINDS = tuple(str(k) for k in Kind)

_F_SCHEMA = {
    "finding_id": pl.String,
    "kind": pl.String,
    "severity": pl.String,
    "household_id": pl.String,
    "transformer_area": pl.String,
    "households": pl.List(pl.String),
    "started_at": pl.Datetime("us"),
    "detected_at": pl.Datetime("us"),
    "event": pl.String,
}


def findings_frame(findings: list[Finding]) -> pl.DataFrame:
    """Findings as a frame with naive UTC times; `subject` is the home or 'ta:<area>'."""

    def naive(t):
        return t.astimezone(UTC).replace(tzinfo=None)

    rows = [
        {
            "finding_id": f.finding_id,
            "kind": str(f.kind),
            "severity": str(f.severity),
            "household_id": f.household_id,
            "transformer_area": f.transformer_area,
            "households": list(f.households),
            "started_at": naive(f.started_at),
            "detected_at": naive(f.detected_at),
            "event": f.event,
        }
        for f in findings
    ]
    df = pl.DataFrame(rows, schema=_F_SCHEMA)
    return df.with_columns(
        subject=pl.coalesce("household_id", pl.format("ta:{}", "transformer_area"))
    )


@dataclass(frozen=True)
class Truth:
    """Everything the scorer compares findings with; built once, shared by engine and rule."""

    incidents: pl.DataFrame  # incident_id, kind, expects, household_id, transformer_area,
    # start, end, kw, n_homes, ref
    touched: pl.DataFrame  # incident_id, kind, household_id, start, end, ...
    profiles: pl.DataFrame  # household_id, warm_end, end, interval, active_thr, ...
    topology: pl.DataFrame  # household_id, transformer_area
    absences: pl.DataFrame  # household_id, start, end
    real_gaps: pl.DataFrame  # household_id, start, end
    zero_runs: pl.DataFrame  # household_id, start, end
    grace: timedelta
    after: timedelta


def real_windows(
    original: pl.DataFrame, profiles: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Real absences, real data gaps and real zero runs in the untouched readings."""
    r = (
        with_thresholds(original, profiles)
        .join(profiles.select("household_id", "interval"), on="household_id")
        .sort("household_id", "ts")
    )
    act = (
        r.filter(pl.col("kwh") > pl.col("active_thr"))
        .with_columns(prev_end=(pl.col("ts") + pl.col("interval")).shift(1).over("household_id"))
        .filter(pl.col("ts") - pl.col("prev_end") >= ABSENCE)
        .select("household_id", start="prev_end", end="ts")
    )
    gaps = (
        r.with_columns(prev_end=(pl.col("ts") + pl.col("interval")).shift(1).over("household_id"))
        .filter(pl.col("ts") > pl.col("prev_end"))
        .select("household_id", start="prev_end", end="ts")
    )
    # A home whose data stops before the others' really has gone silent from then on.
    last = profiles.get_column("end").max()
    gone = profiles.filter(pl.col("end") < last).select(
        "household_id", start="end", end=pl.lit(last + ABSENCE)
    )
    gaps = pl.concat([gaps, gone]).sort("household_id", "start")
    zeros = (
        r.with_columns(
            z=pl.col("kwh") == 0,
            run=(pl.col("kwh") == 0).rle_id().over("household_id"),
        )
        .filter("z")
        .group_by("household_id", "run")
        .agg(start=pl.col("ts").min(), end=(pl.col("ts") + pl.col("interval")).max())
        .select("household_id", "start", "end")
        .sort("household_id", "start")
    )
    return act, gaps, zeros


def _within(frame: pl.DataFrame, windows: pl.DataFrame, on: str, grace: timedelta) -> pl.Series:
    """For each row of `frame` (with row index `fi`), is its detected_at inside any window?"""
    hit = (
        frame.select("fi", on, "detected_at")
        .join(windows.select(on, "start", "end"), on=on)
        .filter(
            (pl.col("detected_at") > pl.col("start"))
            & (pl.col("detected_at") <= pl.col("end") + grace)
        )
        .get_column("fi")
        .unique()
    )
    return frame.get_column("fi").is_in(hit.implode())


def score(findings: list[Finding], truth: Truth) -> dict:
    """Recall and latency per incident type, false alarms per home-month per finding kind."""
    every = findings_frame(findings)
    f = every.filter(pl.col("event") == "raised")
    warm = truth.profiles.select("household_id", "warm_end")
    area_warm = (
        truth.topology.join(warm, on="household_id")
        .group_by("transformer_area")
        .agg(pl.col("warm_end").min().alias("area_warm_end"))
    )
    f = (
        f.join(warm, on="household_id", how="left")
        .join(area_warm, on="transformer_area", how="left")
        .with_columns(warm_end=pl.coalesce("warm_end", "area_warm_end"))
    )
    during_warmup = f.filter(pl.col("detected_at") < pl.col("warm_end")).height
    f = (
        f.filter(pl.col("detected_at") >= pl.col("warm_end"))
        .sort("detected_at", "subject", "kind", "finding_id")
        .with_row_index("fi")
    )
    grace, after = truth.grace, truth.after
    inc = truth.incidents.with_columns(
        subject=pl.coalesce("household_id", pl.format("ta:{}", "transformer_area"))
    )

    # Hits: the first finding of the expected kind on the subject within the window.
    matches = (
        inc.select("incident_id", "subject", "expects", "start", "end", "ref")
        .join(
            f.select("fi", "subject", "kind", "detected_at"),
            left_on=["subject", "expects"],
            right_on=["subject", "kind"],
        )
        .filter(
            (pl.col("detected_at") > pl.col("start"))
            & (pl.col("detected_at") <= pl.col("end") + grace)
        )
    )
    # A power cut placed where the engine already had no_power open about the home (inside
    # its own days-long dark spell, already reported) and kept it open through the cut is on
    # the duty room's screen all along: found, at its reference instant. One raised during
    # the warm-up counts too: a monitor that learned the warm-up (Engine.learn leaves nothing
    # open) raises it at its first step, before any incident. (no_power only: it is always
    # closed by a resolved event, and the fixed rule, which never closes, raises none.)
    opened = every.filter((pl.col("event") == "raised") & (pl.col("kind") == "no_power")).select(
        "finding_id", "subject", "kind", raised="detected_at"
    )
    closed = every.filter(pl.col("event") == "resolved").select("finding_id", closed="detected_at")
    open_at_start = (
        inc.select("incident_id", "subject", "expects", "start", "end", "ref")
        .join(opened, left_on=["subject", "expects"], right_on=["subject", "kind"])
        .filter(pl.col("raised") <= pl.col("start"))
        .join(closed, on="finding_id", how="left")
        .filter(pl.col("closed").is_null() | (pl.col("closed") > pl.col("end")))
        .group_by("incident_id")
        .agg(detected_at=pl.col("ref").first())
    )
    first = (
        pl.concat([matches.select("incident_id", "detected_at"), open_at_start])
        .group_by("incident_id")
        .agg(detected_at=pl.col("detected_at").min())
    )
    # What else was said about the incident's homes meanwhile (what a miss was taken for).
    by_home = pl.concat(
        [
            f.filter(pl.col("household_id").is_not_null()).select(
                "household_id", "kind", "detected_at"
            ),
            f.filter(pl.col("household_id").is_null())
            .explode("households")
            .select(household_id="households", kind="kind", detected_at="detected_at"),
        ]
    )
    other = (
        truth.touched.select("incident_id", "household_id", "start", "end")
        .join(by_home, on="household_id")
        .filter(
            (pl.col("detected_at") > pl.col("start"))
            & (pl.col("detected_at") <= pl.col("end") + grace)
        )
        .sort("detected_at", "kind")
        .group_by("incident_id")
        .agg(said=pl.format("{} {}", "kind", pl.col("detected_at").dt.strftime("%Y-%m-%dT%H:%M")))
    )
    per_incident = (
        inc.select("incident_id", "kind")
        .join(first, on="incident_id", how="left")
        .join(inc.select("incident_id", "ref"), on="incident_id")
        .join(other, on="incident_id", how="left")
        .with_columns(latency_h=(pl.col("detected_at") - pl.col("ref")).dt.total_seconds() / 3600)
        .sort("incident_id")
    )
    table = {}
    for kind in INCIDENT_ORDER:
        rows = per_incident.filter(pl.col("kind") == kind)
        lat = rows.get_column("latency_h").drop_nulls().to_numpy()
        found = int(lat.size)
        table[kind] = {
            "expects": EXPECTED_KIND[kind],
            "n": rows.height,
            "found": found,
            "recall": _r(found / rows.height) if rows.height else None,
            "latency_h_median": _r(float(np.median(lat))) if found else None,
            "latency_h_p90": _r(float(np.percentile(lat, 90))) if found else None,
        }

    # Missing data must never be called inactivity or no power.
    gaps = truth.touched.filter(pl.col("kind") == "silent_meter")
    wrong = gaps.join(
        f.filter(pl.col("kind").is_in(["inactivity", "no_power"])), on="household_id"
    ).filter(
        (pl.col("detected_at") > pl.col("start")) & (pl.col("detected_at") <= pl.col("end") + grace)
    )
    # A grid outage replaces its homes' own no_power; one raised after the outage is over while
    # the untouched data itself reads zero (the home's own dark spell) is not held against it.
    outage_homes = truth.touched.filter(pl.col("kind") == "grid_outage")
    single = (
        outage_homes.join(f.filter(pl.col("kind") == "no_power"), on="household_id")
        .filter(
            (pl.col("detected_at") > pl.col("start"))
            & (pl.col("detected_at") <= pl.col("end") + grace)
        )
        .select("incident_id", "household_id", "detected_at", "end")
    )
    own_zero = (
        single.join(truth.zero_runs, on="household_id", suffix="_zero")
        .filter(
            (pl.col("detected_at") > pl.col("end"))
            & (pl.col("detected_at") > pl.col("start"))
            & (pl.col("detected_at") <= pl.col("end_zero"))
        )
        .select("incident_id", "household_id", "detected_at")
    )
    single = single.join(own_zero, on=["incident_id", "household_id", "detected_at"], how="anti")
    checks = {
        "data_gaps_reported_as_inactivity_or_no_power": wrong.get_column("incident_id").n_unique(),
        "findings_calling_a_data_gap_inactivity_or_no_power": wrong.height,
        "grid_outages_with_individual_no_power": single.get_column("incident_id").n_unique(),
        "individual_no_power_in_grid_outages": single.height,
    }

    # False alarms: outside every incident window of the subject, not explained by real data.
    home_windows = truth.touched.select("household_id", "start", "end")
    area_windows = truth.incidents.filter(pl.col("kind") == "grid_outage").select(
        "start", "end", subject=pl.format("ta:{}", "transformer_area")
    )
    home_f = f.filter(pl.col("household_id").is_not_null())
    area_f = f.filter(pl.col("household_id").is_null())
    in_inc = pl.concat(
        [
            home_f.select("fi", in_incident=_within(home_f, home_windows, "household_id", after)),
            area_f.select("fi", in_incident=_within(area_f, area_windows, "subject", after)),
        ]
    )
    f = f.join(in_inc, on="fi")
    clean = f.filter(~pl.col("in_incident"))
    excused = pl.Series("excused", [False] * clean.height, dtype=pl.Boolean)
    real = {}
    for kind, windows, name in (
        ("inactivity", truth.absences, "absences"),
        ("data_gap", truth.real_gaps, "real_gaps"),
        ("no_power", truth.zero_runs, "zero_runs"),
    ):
        mask = (clean.get_column("kind") == kind) & _within(clean, windows, "household_id", grace)
        excused = excused | mask
        scored = windows.join(
            truth.profiles.select("household_id", "warm_end", "end"),
            on="household_id",
            suffix="_home",
        ).filter(pl.col("end") > pl.col("warm_end"))
        real[name] = scored.height
        real[f"{kind}_inside_{name}"] = int(mask.sum())
    false = clean.filter(~excused)
    months = _clean_home_months(truth)
    by_kind = {}
    for kind in FINDING_KINDS:
        n = false.filter(pl.col("kind") == kind).height
        by_kind[kind] = {"count": n, "per_home_month": _r(n / months) if months else None}
    during = (
        f.filter(pl.col("in_incident"))
        .join(matches.select("fi").unique(), on="fi", how="anti")
        .group_by("kind")
        .len()
        .sort("kind")
    )
    return {
        "incidents": table,
        "false_alarms": {
            "clean_home_months": _r(months),
            "by_kind": by_kind,
            "total": {
                "count": false.height,
                "per_home_month": _r(false.height / months) if months else None,
            },
            "warning_or_critical": {
                "count": false.filter(pl.col("severity") != "info").height,
                "per_home_month": _r(false.filter(pl.col("severity") != "info").height / months)
                if months
                else None,
            },
        },
        "checks": checks,
        "real_events": real,
        "other_findings_during_incidents": dict(during.iter_rows()),
        "findings_during_warmup": during_warmup,
        "findings_scored": f.height,
        "per_incident": [
            {
                "incident_id": r["incident_id"],
                "detected_at": r["detected_at"].isoformat() if r["detected_at"] else None,
                "latency_h": _r(r["latency_h"]) if r["latency_h"] is not None else None,
                "findings_meanwhile": r["said"] or [],
            }
            for r in per_incident.iter_rows(named=True)
        ],
        "false_alarm_list": [
            {
                "kind": r["kind"],
                "subject": r["subject"],
                "started_at": r["started_at"].isoformat(),
                "detected_at": r["detected_at"].isoformat(),
                "severity": r["severity"],
            }
            for r in false.sort("subject", "detected_at", "kind").iter_rows(named=True)
        ],
    }


def _clean_home_months(truth: Truth) -> float:
    """Home time after warm-up minus each home's incident windows (they never overlap)."""
    p = truth.profiles.select("household_id", lo="warm_end", hi="end")
    total = p.select((pl.col("hi") - pl.col("lo")).clip(timedelta(0)).sum()).item()
    busy = (
        truth.touched.join(p, on="household_id")
        .select(
            (
                pl.min_horizontal(pl.col("end") + truth.after, "hi")
                - pl.max_horizontal("start", "lo")
            )
            .clip(timedelta(0))
            .sum()
        )
        .item()
    )
    return ((total or timedelta(0)) - (busy or timedelta(0))) / MONTH


def _r(x: float) -> float:
    return round(float(x), 4)
