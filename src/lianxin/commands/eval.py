"""`lianxin eval`: score the engine on real household data with injected incidents, beside the
fixed 12-hour rule, and write the figures as JSON.

Without --seed: the honest evaluation, homes split into a tuning and a held-out half (fixed by
--split-seed), every half over several incident seeds and seasons, the targets judged on the
held-out half. With --seed: one run (on --half and --season if given), with --misses to see
what went wrong; tune with --half tuning only."""

from lianxin.commands.progress import add_quiet, bar, ticks

DEFAULT_DATA = "/work/shared/data/lcl_london/data.parquet"


def add_arguments(parser):
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA,
        help="Parquet of real readings: household_id, ts (treated as UTC), kwh per interval "
        "or kw averaged over the interval, e.g. the UCI 1-minute set (its clock has no DST: "
        "pass --tz UTC to keep it) (default: %(default)s)",
    )
    parser.add_argument("--homes", type=int, help="evaluate on this many homes (seeded choice)")
    parser.add_argument(
        "--seed",
        type=int,
        help="one run with this incident seed, instead of the held-out suite over --seeds",
    )
    parser.add_argument(
        "--seeds", default="1,2,3,4,5", help="incident seeds of the suite (default: %(default)s)"
    )
    parser.add_argument(
        "--seasons",
        default="winter,summer,autumn",
        help="seasons of the suite, of winter, summer, autumn (default: %(default)s)",
    )
    parser.add_argument(
        "--season", help="one run on this season only (winter, summer, autumn), with --seed"
    )
    parser.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of the split into tuning and held-out homes (default: %(default)s)",
    )
    parser.add_argument(
        "--half",
        choices=("tuning", "heldout", "all"),
        help="the suite: only this half (default both); one run: only these homes (default all)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="suite runs in parallel processes (default: 1)"
    )
    parser.add_argument(
        "--weeks-warmup", type=float, default=4, help="weeks of learning before any incident"
    )
    parser.add_argument("--weeks", type=float, help="use only the first WEEKS weeks of data")
    parser.add_argument(
        "--tz",
        default="Europe/London",
        help="deployment time zone the engine sees local time in (default: %(default)s, "
        "where the LCL homes are)",
    )
    parser.add_argument("--quick", action="store_true", help="16 homes x 12 weeks, for development")
    parser.add_argument("--out", help="write the full result as JSON here")
    parser.add_argument(
        "--misses",
        type=int,
        default=0,
        metavar="N",
        help="also list up to N of the engine's missed incidents and false alarms per kind",
    )
    add_quiet(parser)


def run(args) -> int:
    import json
    from pathlib import Path
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    import polars as pl

    from lianxin.engine.evaluation import evaluate, format_misses, format_table
    from lianxin.errors import LianxinError

    homes, weeks = args.homes, args.weeks
    if args.quick:
        homes, weeks = homes or 16, weeks or 12
    if args.weeks_warmup < 1:
        raise LianxinError(f"--weeks-warmup must be at least 1, not {args.weeks_warmup:g}")
    if homes is not None and homes < 1:
        raise LianxinError(f"--homes must be at least 1, not {homes}")
    if weeks is not None and weeks <= args.weeks_warmup:
        raise LianxinError(f"--weeks {weeks:g} leaves nothing after --weeks-warmup")
    try:
        ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise LianxinError(f"--tz {args.tz!r} is not a known time zone") from exc
    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise LianxinError(f"--out {args.out}: its folder does not exist")
    seasons = _names(args.seasons, "--seasons")
    if args.season:
        _names(args.season, "--season")
    seeds = _seeds(args.seeds)
    readings = load_readings(args.data)
    single = args.quick or args.homes or args.weeks or args.season or args.misses
    if args.seed is None and not single:
        return _suite(args, readings, seeds, seasons)
    if args.seed is None:
        args.seed = 1
    if args.half not in (None, "all"):
        from lianxin.engine.evaluation.suite import split_homes

        ids = readings.get_column("household_id").unique().to_list()
        keep = split_homes(ids, args.split_seed)[args.half]
        readings = readings.filter(pl.col("household_id").is_in(keep))
    if args.season:
        from lianxin.engine.evaluation.suite import SEASONS, season_readings

        readings = season_readings(readings, SEASONS[args.season], args.weeks_warmup)
    with bar(unit=" ticks", desc="engine replay", quiet=args.quiet) as b:
        result = _evaluate(evaluate, readings, args, homes, weeks, b)
    print(format_table(result))
    if args.misses > 0:
        print()
        print(format_misses(result, args.misses))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.out}")
    return 0


def _names(text, option):
    from lianxin.engine.evaluation.suite import SEASONS
    from lianxin.errors import LianxinError

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for n in names:
        if n not in SEASONS:
            raise LianxinError(f"{option}: unknown season {n!r} (have {', '.join(SEASONS)})")
    if not names:
        raise LianxinError(f"{option}: no season given")
    return names


def _seeds(text):
    from lianxin.errors import LianxinError

    try:
        seeds = tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError as exc:
        raise LianxinError(f"--seeds {text!r}: not a list of whole numbers") from exc
    if not seeds:
        raise LianxinError("--seeds: no seed given")
    return seeds


def _suite(args, readings, seeds, seasons) -> int:
    import json
    import sys
    from pathlib import Path

    from lianxin.engine.evaluation.suite import HALVES, format_suite, run_suite

    halves = HALVES if args.half in (None, "all") else (args.half,)
    result = run_suite(
        readings,
        split_seed=args.split_seed,
        seeds=seeds,
        seasons=seasons,
        halves=halves,
        weeks_warmup=args.weeks_warmup,
        tz=args.tz,
        jobs=args.jobs,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(format_suite(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.out}")
    return 0


def _evaluate(evaluate, readings, args, homes, weeks, b):
    import sys

    def log(msg):
        # A log line above the bar, not through it.
        b.clear()
        print(msg, file=sys.stderr, flush=True)
        b.refresh()

    return evaluate(
        readings,
        seed=args.seed,
        homes=homes,
        weeks=weeks,
        weeks_warmup=args.weeks_warmup,
        tz=args.tz,
        log=log,
        progress=ticks(b),
    )


def load_readings(path):
    """The Parquet file of real readings, normalised; a bad file is one line naming it."""
    from pathlib import Path

    import polars as pl

    from lianxin.engine.evaluation.data import readings_from_frame
    from lianxin.errors import LianxinError

    path = Path(path)
    if not path.exists():
        raise LianxinError(f"{path}: no such file")
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - one line naming the file
        raise LianxinError(f"{path}: not a readable Parquet file ({exc})") from exc
    return readings_from_frame(df, str(path))
