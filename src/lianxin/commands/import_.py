"""`lianxin import PATH...`: import utility exports (96-point curves, daily registers, long
readings, meter events, payments, balances, topology) into the stores.

Prints a summary per file. Exits 1 only when nothing at all could be read from any file."""

import sys

from lianxin.commands.progress import add_quiet, bar


def add_arguments(parser):
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files to import")
    parser.add_argument(
        "--register-unknown",
        action="store_true",
        help="create unknown meters (and their households and transformer areas) from the "
        "export's columns (户号, 表号, 户名, 台区 ...) instead of quarantining their rows",
    )
    parser.add_argument(
        "--unit",
        choices=["kWh", "kW"],
        help="what the values of a 96-point curve are when the file does not say: energy per "
        "quarter-hour (kWh) or average power (kW, stored as kWh = kW/4); for long files, the "
        "unit of rows that do not name one",
    )
    parser.add_argument(
        "--time-zone",
        help="zone of timestamps without an offset (default: LIANXIN_TIME_ZONE, Asia/Shanghai)",
    )
    parser.add_argument(
        "--ts-marks",
        choices=["start", "end"],
        default="start",
        help="long format: timestamps mark the start (default) or the end of the interval",
    )
    parser.add_argument(
        "--interval",
        type=int,
        default=15,
        choices=[1, 15, 30, 60],
        help="long format with --ts-marks end: interval length in minutes (default 15)",
    )
    add_quiet(parser)


def run(args) -> int:
    from lianxin.web.setup import require_migrated, setup_django

    setup_django()
    require_migrated()
    from django.conf import settings

    from lianxin.ingest.pipeline import import_file
    from lianxin.ingest.readers import Options

    options = Options(
        time_zone=args.time_zone or settings.TIME_ZONE,
        unit=args.unit,
        ts_marks=args.ts_marks,
        interval_minutes=args.interval,
    )
    anything = False
    for path in args.paths:
        with bar(unit=" rows", desc=str(path)[-40:], quiet=args.quiet) as b:
            summary = import_file(
                path, options, register_unknown=args.register_unknown, progress=b.update
            )
        print("\n".join(summary.lines()), flush=True)
        anything |= summary.good > 0
    if not anything:
        print("lianxin import: nothing could be read", file=sys.stderr)
        return 1
    return 0
