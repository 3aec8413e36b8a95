"""The engine's input layer: long readings in, validated and coded for the engine (no Django,
no I/O). Below core, learn and replay, which all read their input through it; it imports nothing
of theirs (lianxin.meterdata says what a unit, a meter kind and a local time mean)."""

from __future__ import annotations

import numpy as np
import polars as pl

from lianxin import meterdata
from lianxin.errors import LianxinError
from lianxin.meterdata import METER_KINDS


class InputError(LianxinError, ValueError):
    """Input a person must fix; the message names the table, field and value."""


def prepare_readings(readings: pl.DataFrame, tz: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validated readings (meter code, epoch-second `start`, kwh; each meter's together, in
    time order) and the meters (code, household_id, meter_kind, interval_s inferred as the
    commonest step). The quantity column is `quantity` (kWh; m³ for water and gas) or `kwh`
    for electricity alone (lianxin.meterdata.quantity_column); it is called kwh inside."""
    try:
        quantity = meterdata.quantity_column(readings)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if quantity != "kwh":
        readings = readings.drop("kwh", strict=False).rename({quantity: "kwh"})
    for col in ("household_id", "ts"):
        if col not in readings.columns:
            raise InputError(
                f"readings: missing column {col!r} (have {', '.join(readings.columns)})"
            )
    if readings.height == 0:
        raise InputError("readings: there are no rows to replay")
    df = readings.select(
        pl.col("household_id").cast(pl.Utf8),
        pl.col("ts"),
        pl.col("kwh"),
        (pl.col("meter_kind") if "meter_kind" in readings.columns else pl.lit("electricity"))
        .cast(pl.Utf8)
        .fill_null("electricity")
        .alias("meter_kind"),
    ).with_row_index("line", offset=1)
    if not df["kwh"].dtype.is_numeric():
        num = df["kwh"].cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False)
        bad = df.filter(num.is_null() & df["kwh"].is_not_null())
        if bad.height:
            b = bad.row(0, named=True)
            raise InputError(
                f"readings row {b['line']}: kwh {b['kwh']!r} for household {b['household_id']} "
                "is not a number"
            )
        df = df.with_columns(kwh=num)
    df = df.with_columns(pl.col("kwh").cast(pl.Float64))
    no_nulls(df, "readings", ("household_id", "ts", "kwh"))
    kwh = df["kwh"].to_numpy()
    try:  # the engine's own row check (one place for what a reading's quantity may be)
        meterdata.check_engine_quantities(kwh, df["household_id"])
    except ValueError as exc:
        raise InputError(str(exc)) from None
    bad = df.filter(~pl.col("meter_kind").is_in(METER_KINDS))
    if bad.height:
        b = bad.row(0, named=True)
        raise InputError(
            f"readings row {b['line']}: meter_kind {b['meter_kind']!r} is not one of "
            f"{', '.join(METER_KINDS)}"
        )
    # A repeated naive local time (the hour after a DST fall-back) is the later instant the
    # second time a meter shows it.
    try:
        start = epoch_seconds(df["ts"], tz, "readings", ambiguous="raise")
    except pl.exceptions.ComputeError:  # only then pay for finding the repeats
        repeat = pl.int_range(pl.len()).over("household_id", "meter_kind", "ts")
        later = df.select(repeat > 0).to_series()
        start = epoch_seconds(df["ts"], tz, "readings", later=later)
    # Meters as small integer codes: sorting and grouping integers is what keeps a year of a
    # thousand homes quick. A code is worked out once per run of rows of one household and kind
    # (files usually list a meter's readings together; in time order across meters each row is
    # a run). Households are numbered by first appearance, the same over runs as over rows.
    kind_code = pl.col("meter_kind").replace_strict(
        {k: i for i, k in enumerate(METER_KINDS)}, return_dtype=pl.Int64
    )
    new_run = df.select(
        (pl.col("household_id") != pl.col("household_id").shift())
        | (pl.col("meter_kind") != pl.col("meter_kind").shift())
    ).to_series()
    run_heads = np.flatnonzero(new_run.fill_null(True).to_numpy())
    heads_df = df.select("household_id", "meter_kind")
    if len(run_heads) < df.height:  # in time order across meters every row is a run
        heads_df = heads_df[run_heads]
    # Numbered explicitly (a categorical's codes follow first appearance only in one chunk).
    first_seen = heads_df["household_id"].unique(maintain_order=True)
    hid_code = pl.col("household_id").replace_strict(
        first_seen, pl.int_range(len(first_seen), dtype=pl.Int64, eager=True)
    )
    heads_df = heads_df.select(meter=hid_code * 4 + kind_code, household_id="household_id",
                               meter_kind="meter_kind")  # fmt: skip
    codes = heads_df["meter"].to_numpy()
    # Each meter's household and kind, from its first row; the row-long frames go now (a year
    # of a thousand homes in time order is 16 M of them).
    named = heads_df.unique("meter", keep="first", maintain_order=True).sort("meter")
    del heads_df, new_run
    # The engine's work from here on is on numbers alone (meter, start, kwh; line to name a row
    # in an error): the text columns stay behind, unsorted and uncopied.
    work = pl.DataFrame(
        {
            "line": df["line"],
            "meter": codes
            if len(codes) == df.height
            else np.repeat(codes, np.diff(run_heads, append=df.height)),
            "start": start,
            "kwh": kwh,
        }
    )
    del run_heads, start
    m, st = work["meter"].to_numpy(), work["start"].to_numpy()
    within, step = m[1:] == m[:-1], st[1:] - st[:-1]
    # Files usually list each meter's readings together and in time order: then no sort is
    # needed, and no reading can be there twice (what follows needs each meter's readings
    # together and in time order, once each).
    # (codes are small: more runs than codes, or a code counted twice, is a meter in two runs)
    if len(codes) > codes.max() + 1 or np.bincount(codes).max() > 1 or (within & (step <= 0)).any():
        del m, st, within, step
        order = _meter_time_order(work)
        # Gathered a column at a time, each old one let go as its sorted copy is made.
        cols = work.get_columns()
        del work
        work = pl.DataFrame([cols.pop(0).gather(order) for _ in range(len(cols))])
        del order
        work = _once_each(work, df)
        m, st = work["meter"].to_numpy(), work["start"].to_numpy()
        within, step = m[1:] == m[:-1], st[1:] - st[:-1]
    # A meter's step changes only where its readings have a gap: take the steps a run of equal
    # ones at a time.
    step[~within] = 0  # where a meter's readings end (steps within one are > 0)
    rle = pl.Series(step).rle().struct.unnest()
    n = rle["len"].to_numpy().astype(np.int64)
    at = np.cumsum(n) - n  # a run's first step; step i goes from row i to row i + 1
    runs = pl.DataFrame({"at": at, "meter": m[at], "step": rle["value"], "n": n}).filter(
        pl.col("step") > 0
    )
    # The commonest step (the smallest of equally common ones).
    steps = (
        runs.group_by("meter", "step")
        .agg(pl.col("n").sum())
        .group_by("meter")
        .agg(interval_s=pl.col("step").filter(pl.col("n") == pl.col("n").max()).min())
    )
    meters = named.join(steps, on="meter", how="left", maintain_order="left")
    common = meters["interval_s"].drop_nulls()
    default = int(common.mode().min()) if len(common) else 1800
    meters = meters.with_columns(pl.col("interval_s").fill_null(default).cast(pl.Int64))
    bad = meters.filter(~pl.col("interval_s").is_between(60, 3600))
    if bad.height:
        b = bad.row(0, named=True)
        raise InputError(
            f"readings: household {b['household_id']} ({b['meter_kind']}) has readings every "
            f"{b['interval_s'] / 60:g} minutes; intervals of 1 to 60 minutes are supported"
        )
    lookup = np.zeros(int(meters["meter"].max()) + 1, np.int64)
    lookup[meters["meter"].to_numpy()] = meters["interval_s"].to_numpy()
    # A reading may not overlap the next one of the same meter.
    off = runs["step"].to_numpy() % lookup[runs["meter"].to_numpy()] != 0
    if off.any():
        i = int(runs["at"][int(np.argmax(off))]) + 1
        b = _source_row(df, work, i)
        raise InputError(
            f"readings row {b['line']}: ts {b['ts']} of household {b['household_id']} is off "
            f"its {lookup[work['meter'][i]] // 60}-minute grid"
        )
    return work.select("meter", "start", "kwh"), meters


def _source_row(df: pl.DataFrame, work: pl.DataFrame, i: int) -> dict:
    """The input row behind row i of the work frame (for an error message)."""
    return df.row(int(work["line"][i]) - 1, named=True)


def _meter_time_order(work: pl.DataFrame) -> pl.Series:
    """Row order by meter, then time. One integer key sorts far quicker than two columns; the
    order of one meter's repeats of one instant matters only for naming the row of a clash."""
    st = work["start"].to_numpy()
    smin = int(st.min())
    key = work["meter"].to_numpy() * (int(st.max()) - smin + 1)
    key += st
    key -= smin
    return pl.Series(key).arg_sort()


def _once_each(work: pl.DataFrame, df: pl.DataFrame) -> pl.DataFrame:
    """Sorted readings with a reading given twice (a re-sent file) kept once; two different
    kwh for one meter and time are an error."""
    m, st, kw = work["meter"].to_numpy(), work["start"].to_numpy(), work["kwh"].to_numpy()
    same = (m[1:] == m[:-1]) & (st[1:] == st[:-1])
    exact = same & (kw[1:] == kw[:-1])
    if (same & ~exact).any():
        # The row named is the larger value of the first clash in (meter, time, kwh) order.
        work = work.sort("meter", "start", "kwh")
        m, st, kw = work["meter"].to_numpy(), work["start"].to_numpy(), work["kwh"].to_numpy()
        same = (m[1:] == m[:-1]) & (st[1:] == st[:-1])
        b = _source_row(df, work, int(np.argmax(same & (kw[1:] != kw[:-1]))) + 1)
        raise InputError(
            f"readings row {b['line']}: household {b['household_id']} has two different kwh "
            f"values for ts {b['ts']}"
        )
    return work.filter(np.concatenate([[True], ~exact])) if exact.any() else work


def epoch_seconds(
    ts: pl.Series, tz: str, table: str, later: pl.Series | None = None, ambiguous="earliest"
) -> pl.Series:
    """Seconds since the epoch; naive values are local time in tz (ambiguous ones the earlier
    instant, or the later where `later` is true)."""
    if ts.dtype == pl.Utf8:
        parsed = ts.str.to_datetime(strict=False, time_unit="us")
        bad = parsed.is_null() & ts.is_not_null()
        if bad.any():
            i = int(bad.arg_max())
            raise InputError(f"{table} row {i + 1}: ts {ts[i]!r} is not a date-time")
        ts = parsed
    if ts.dtype == pl.Date:
        ts = ts.cast(pl.Datetime("us"))
    if not isinstance(ts.dtype, pl.Datetime):
        raise InputError(f"{table}: column 'ts' must be a date-time, not {ts.dtype}")
    if ts.dtype.time_zone is None:
        amb = ambiguous
        if later is not None and later.any():
            amb = pl.Series(["latest" if x else "earliest" for x in later.to_list()])
        local = meterdata.to_utc(ts, tz, ambiguous=amb)
        bad = local.is_null() & ts.is_not_null()
        if bad.any():
            i = int(bad.arg_max())
            raise InputError(f"{table} row {i + 1}: ts {ts[i]} does not exist in {tz} (DST gap)")
        ts = local
    # Whole seconds (floored) of the stored value, as dt.epoch("s") gives them.
    per_s = {"ns": 10**9, "us": 10**6, "ms": 10**3}[ts.dtype.time_unit]
    return (ts.to_physical() // per_s).alias("start")


def no_nulls(df, table, cols):
    for col in cols:
        nulls = df.filter(pl.col(col).is_null())
        if nulls.height:
            raise InputError(f"{table} row {nulls['line'][0]}: {col} is empty")
