"""The fixed rule deployed elsewhere, to compare against: "no consumption above the standby level
for 12 hours" -> inactivity.

Implemented simply and fairly: the standby level and the activity threshold are defined as the
evaluation's ground truth defines them (learned from the home's warm-up weeks, then re-learned
each week from the 4 weeks before, here from the data the rule itself receives); the rule looks
only at readings it has received, fires once when 12 hours have passed since the end of the
last reading above the threshold, and re-arms at the next such reading. Missing readings are
not taken for "no consumption": after a gap in the data the 12 hours count from its end, so the
rule is not blamed for a silent meter a deployer would filter out anyway.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import polars as pl

from lianxin.engine.evaluation.incidents import with_thresholds
from lianxin.engine.findings import Finding, Kind, Severity


def fixed_rule(readings: pl.DataFrame, profiles: pl.DataFrame, hours: float = 12) -> list[Finding]:
    """Inactivity findings of the fixed rule. `readings` and the result's times are UTC."""
    limit = timedelta(hours=hours)
    p = profiles.select("household_id", "interval", "warm_end")
    r = (
        with_thresholds(readings, profiles)
        .join(p, on="household_id")
        .sort("household_id", "ts")
        .with_columns(end=pl.col("ts") + pl.col("interval"))
        .with_columns(
            active=pl.col("kwh") > pl.col("active_thr"),
            after_gap=(pl.col("ts") > pl.col("end").shift(1).over("household_id")).fill_null(True),
        )
        .with_columns(
            # the clock restarts at the end of an active reading, or at the start of the first
            # reading after missing data
            reset=pl.when("active")
            .then(pl.col("end"))
            .when("after_gap")
            .then(pl.col("ts"))
            .otherwise(None),
        )
        .with_columns(
            since=pl.col("reset").forward_fill().over("household_id"),
            episode=pl.col("reset").is_not_null().cum_sum().over("household_id"),
        )
        .filter(pl.col("end") - pl.col("since") >= limit)
        .group_by("household_id", "episode", maintain_order=True)
        .first()
        # the rule is live from the end of the warm-up it learned its standby level on
        .filter(pl.col("end") > pl.col("warm_end"))
    )
    out = []
    for row in r.iter_rows(named=True):
        since = row["since"].replace(tzinfo=UTC)
        out.append(
            Finding(
                kind=Kind.INACTIVITY,
                severity=Severity.WARNING,
                started_at=since,
                detected_at=row["end"].replace(tzinfo=UTC),
                household_id=row["household_id"],
                reason_en=f"No consumption above the standby level for {hours:g} hours "
                f"(since {since:%Y-%m-%d %H:%M} UTC).",
                reason_zh=f"已连续{hours:g}小时用电未超过待机水平"
                f"（自 {since:%Y-%m-%d %H:%M} UTC）。",
                evidence={
                    "rule": f"fixed {hours:g} h",
                    "threshold_kwh": round(row["active_thr"], 4),
                },
            )
        )
    return out
