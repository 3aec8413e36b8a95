"""`lianxin store check [--repair]`: verify every file of the stores (footer, page checksums,
decoding, columns) and, with --repair, set the damaged ones aside and recover what they still
hold.

A damaged file is moved to <dataset>/damaged/day=…/ (the readers do the same when they meet
one, so the service goes on); --repair then reads back each of its row groups that still
decodes and stores those rows again, keeping their arrival time. Exit 0: every file is sound
(or was repaired); 1: damaged files were found and left in place (run with --repair).
"""

import sys
from pathlib import Path


def add_arguments(parser):
    sub = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="verify every file of the stores")
    check.add_argument(
        "--repair",
        action="store_true",
        help="set damaged files aside and recover the row groups that still read",
    )
    check.add_argument("--home", help="data directory (default: LIANXIN_HOME)")
    backup = sub.add_parser(
        "backup",
        help="bring a copy of the stores up to now (while everything runs)",
        description="Copy the readings, events, payments and balances stores to DEST, each as "
        "it is at one instant, while ingest and the monitor go on. Run it again to bring the copy "
        "up to date: only new files are copied. Restore: stop Lianxin, copy DEST's folders back "
        "into the data directory. See docs/operations.md (backups).",
    )
    backup.add_argument("dest", help="folder of the copy (another disk or a mounted share)")
    backup.add_argument("--home", help="data directory (default: LIANXIN_HOME)")


def run(args) -> int:
    from lianxin.store import open_stores

    if args.store_command == "backup":
        return _backup(args)

    home = Path(args.home) if args.home else _home()
    stores = open_stores(home)
    damaged = 0
    checked = 0
    recovered = 0
    for dataset in stores:
        for day in dataset.days():
            for path in dataset._files(day):
                checked += 1
                why = dataset.verify(path)
                if why is None:
                    continue
                damaged += 1
                print(f"damaged: {path}: {why}", flush=True)
                if args.repair:
                    moved = dataset.set_aside(path, why)
                    if moved is not None:
                        n = recover(dataset, moved)
                        recovered += n
                        print(f"  set aside to {moved}; {n:,} row(s) recovered", flush=True)
    print(
        f"{checked:,} file(s) checked, {damaged} damaged"
        + (f", {recovered:,} row(s) recovered" if args.repair else ""),
        flush=True,
    )
    if damaged and not args.repair:
        print("run `lianxin store check --repair` to set them aside", file=sys.stderr)
        return 1
    return 0


def _backup(args) -> int:
    from lianxin.errors import LianxinError
    from lianxin.store import open_stores

    home = Path(args.home) if args.home else _home()
    dest = Path(args.dest)
    if dest.resolve() == home.resolve() or home.resolve() in dest.resolve().parents:
        raise LianxinError(f"{dest}: a backup must not be inside the data directory {home}")
    total = [0, 0, 0]
    for dataset in open_stores(home):
        copied, kept, removed = dataset.backup(dest / dataset.root.name)
        total = [total[0] + copied, total[1] + kept, total[2] + removed]
        print(
            f"{dataset.root.name}: {copied:,} file(s) copied, {kept:,} already there, "
            f"{removed:,} compacted away and removed from the copy",
            flush=True,
        )
    print(f"backup of {home} in {dest} is up to date ({sum(total[:2]):,} files)", flush=True)
    return 0


def recover(dataset, path: Path) -> int:
    """Store again the rows of every row group of a damaged file that still decodes."""
    import polars as pl
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
    except Exception:  # noqa: BLE001 - no footer: nothing can be located in the file
        return 0
    rows = 0
    for group in range(pf.num_row_groups):
        try:
            table = pf.read_row_group(group)
            frame = pl.from_arrow(table)
        except (Exception, pl.exceptions.PanicException):  # noqa: BLE001 - this group is lost
            continue
        frame = frame.select([c for c in (*dataset.schema, "received_at") if c in frame.columns])
        dataset.write(frame)
        rows += frame.height
    return rows


def _home() -> Path:
    from lianxin.web.config import home_dir

    return home_dir()
