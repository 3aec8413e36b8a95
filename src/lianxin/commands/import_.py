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
    add_register_arguments(parser)
    add_quiet(parser)


def flag_is_interval(args) -> bool:
    return not hasattr(args, "reading_interval")


def _minutes(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of minutes: {text!r}") from None
    if not 1 <= value <= 60:
        raise argparse.ArgumentTypeError(f"{value} minutes: an interval is 1 to 60 minutes")
    return value


def add_register_arguments(parser, flag: str = "--interval"):
    """Options of interval readings and registers, shared by `import` and `watch`."""
    parser.add_argument(
        flag,
        type=_minutes,
        help="interval in minutes (1-60): of long files with --ts-marks end (default 15), and of "
        "interval registers (示值), whose interval is otherwise inferred per meter",
    )
    parser.add_argument(
        "--spread",
        action="store_true",
        help="interval registers: spread a difference that spans missing points evenly over "
        "them (default: keep it as one longer interval, which the engine does not learn from)",
    )
    parser.add_argument(
        "--register-digits",
        type=int,
        metavar="N",
        help="interval registers: the register's width in integer digits (a rollover wraps at "
        "10^N); default: from the value before the wrap, when it is close to its limit",
    )
    parser.add_argument(
        "--replaced-below",
        type=float,
        metavar="KWH",
        help="interval registers: a register that falls to KWH or less is a replaced meter "
        "(the interval across it is left as a gap) rather than a rejected backwards step",
    )


def register_options(args, interval: int | None = None) -> dict:
    interval = args.interval if interval is None and flag_is_interval(args) else interval
    return {
        "interval_minutes": interval or 15,
        "interval_given": interval is not None,
        "spread": args.spread,
        "register_digits": args.register_digits,
        "replaced_below": args.replaced_below,
    }


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
        **register_options(args),
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
