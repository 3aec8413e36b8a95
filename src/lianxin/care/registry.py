"""The care database's registry as the frames the engine's runners read: which meter is whose
home, which account pays for it, and each resident's settings.

One reading of the database for the live monitor (`lianxin monitor`) and for Spark runs
(`lianxin spark registry` writes these frames to files, since Spark's tasks have no database).
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

METERS_SCHEMA = {
    "meter": pl.String,
    "household_id": pl.String,
    "meter_kind": pl.String,
    "interval_s": pl.Int64,
    "transformer_area": pl.String,
    "account": pl.String,
    "resolution_kwh": pl.Float64,
}
SETTINGS_SCHEMA = {
    "household_id": pl.String,
    "sensitivity": pl.String,
    "quiet_start": pl.String,
    "quiet_end": pl.String,
}


def meters_frame(homes: Iterable[str] | None = None) -> pl.DataFrame:
    """Every active meter, and every meter a 换表 replaced (its readings are still the home's
    history), with its household, kind, interval, transformer area and account (户号), in
    meter number order; only those of the households `homes` (codes) when given."""
    from lianxin.care.models import Meter, with_replaced

    meters = Meter.objects if homes is None else Meter.objects.filter(household__code__in=homes)
    rows = list(
        with_replaced(meters).values_list(
            "number",
            "household__code",
            "kind",
            "interval_minutes",
            "household__transformer_area__code",
            "account_number",
            "resolution_kwh",
        )
    )
    if not rows:
        return pl.DataFrame(schema=METERS_SCHEMA)
    number, household, kind, minutes, area, account, resolution = zip(*rows, strict=True)
    return pl.DataFrame(
        {
            "meter": list(number),
            "household_id": list(household),
            "meter_kind": list(kind),
            "interval_s": [m * 60 for m in minutes],
            "transformer_area": list(area),
            "account": list(account),
            "resolution_kwh": list(resolution),
        },
        schema=METERS_SCHEMA,
    )


def settings_frame(homes: Iterable[str] | None = None) -> pl.DataFrame:
    """Each enrolled resident's sensitivity and quiet hours (HH:MM), by household; only those
    of the households `homes` (codes) when given."""
    from lianxin.care.models import CareRecipient

    people = CareRecipient.objects
    if homes is not None:
        people = people.filter(household__code__in=homes)

    return pl.DataFrame(
        [
            {
                "household_id": code,
                "sensitivity": sensitivity,
                "quiet_start": _hhmm(start),
                "quiet_end": _hhmm(end),
            }
            for code, sensitivity, start, end in people.values_list(
                "household__code", "sensitivity", "quiet_hours_start", "quiet_hours_end"
            )
        ],
        schema=SETTINGS_SCHEMA,
    )


def _hhmm(value) -> str | None:
    return value.strftime("%H:%M") if value else None
