"""`lianxin export-readings --out FILE.{parquet,csv}`: what the readings store holds, in long
format: meter number, account number, household id, timestamp (interval start) in the
deployment's zone with its offset, value, unit, meter kind, and when the value was received.

Streams one UTC day at a time, so memory stays bounded whatever the store's size."""

import sys
from datetime import UTC, datetime

from lianxin.commands.progress import add_quiet, bar


def add_arguments(parser):
    parser.add_argument("--out", required=True, help="output file, .parquet or .csv")
    parser.add_argument(
        "--meter", action="append", default=None, help="meter number (repeat for several)"
    )
    parser.add_argument("--from", dest="start", help="first time, e.g. 2024-03-01 or ISO 8601")
    parser.add_argument("--to", dest="end", help="end time (exclusive)")
    parser.add_argument("--unit", help="only readings of this unit (kWh, kWh/d, kWh reg, V ...)")
    add_quiet(parser)


def run(args) -> int:
    from lianxin.web.setup import require_migrated, setup_django

    setup_django()
    require_migrated()
    from django.conf import settings

    from lianxin.errors import LianxinError

    out = args.out
    if not (out.endswith(".parquet") or out.endswith(".csv")):
        raise LianxinError(f"--out {out}: name a .parquet or .csv file")
    tz = settings.TIME_ZONE
    start = _parse_time(args.start, tz, "--from")
    end = _parse_time(args.end, tz, "--to")
    n = export(out, args.meter, start, end, args.unit, tz, quiet=args.quiet)
    print(f"wrote {n:,} readings to {out}", file=sys.stderr)
    return 0


def _parse_time(text, tz, flag):
    if not text:
        return None
    from zoneinfo import ZoneInfo

    from lianxin.errors import LianxinError

    try:
        t = datetime.fromisoformat(text)
    except ValueError as exc:
        raise LianxinError(
            f"{flag} {text!r}: not a date or time (use 2024-03-01 or ISO 8601)"
        ) from exc
    return t if t.tzinfo else t.replace(tzinfo=ZoneInfo(tz))


def export(out, meters, start, end, unit, tz, quiet: bool = True) -> int:
    """Write the export; returns the number of readings written."""
    from datetime import timedelta

    import polars as pl
    import pyarrow.parquet as pq
    from django.conf import settings

    from lianxin.atomic import atomic_write
    from lianxin.care.models import Meter
    from lianxin.csvcells import safe_text_columns
    from lianxin.store import ReadingsStore

    store = ReadingsStore(settings.LIANXIN_HOME / "readings")
    qs = Meter.objects.all() if meters is None else Meter.objects.filter(number__in=meters)
    directory = pl.DataFrame(
        list(qs.values_list("number", "account_number", "household__code", "kind")),
        schema={
            "meter": pl.String,
            "account": pl.String,
            "household": pl.String,
            "kind": pl.String,
        },
        orient="row",
    )
    written = 0
    writer = None
    first_csv = True
    days = store.days()
    if start is not None:
        days = [d for d in days if d >= start.astimezone(UTC).date()]
    if end is not None:
        days = [d for d in days if d <= (end - timedelta(microseconds=1)).astimezone(UTC).date()]
    with atomic_write(out) as fh, bar(total=len(days), unit=" days", quiet=quiet) as b:
        for day in days:
            b.set_postfix_str(f"{written:,} readings", refresh=False)
            b.update()
            lo = datetime.combine(day, datetime.min.time(), UTC)
            hi = lo + timedelta(days=1)
            lo = max(lo, start) if start else lo
            hi = min(hi, end) if end else hi
            df = store.read(meters, lo, hi)
            if unit:
                df = df.filter(pl.col("unit") == unit)
            if not df.height:
                continue
            df = df.join(directory, on="meter", how="left").select(
                "meter",
                "account",
                "household",
                pl.col("ts").dt.convert_time_zone(tz),
                "value",
                "unit",
                "kind",
                pl.col("received_at").dt.convert_time_zone(tz),
            )
            written += df.height
            if out.endswith(".csv"):
                df = df.with_columns(
                    pl.col("ts", "received_at").dt.strftime("%Y-%m-%dT%H:%M:%S%:z")
                )
                df = safe_text_columns(df)  # no formulas for the spreadsheet (OWASP)
                df.write_csv(fh, include_header=first_csv)
                first_csv = False
            else:
                table = df.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(fh, table.schema)
                writer.write_table(table)
        if writer is not None:
            writer.close()
        elif out.endswith(".parquet"):
            _empty(tz).write_parquet(fh)
        elif first_csv:
            _empty(tz).write_csv(fh)
    return written


def _empty(tz):
    import polars as pl

    return pl.DataFrame(
        schema={
            "meter": pl.String,
            "account": pl.String,
            "household": pl.String,
            "ts": pl.Datetime("us", tz),
            "value": pl.Float64,
            "unit": pl.String,
            "kind": pl.String,
            "received_at": pl.Datetime("us", tz),
        }
    )
