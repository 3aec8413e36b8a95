"""`lianxin watch DIR`: import files dropped into a folder.

A file is taken once its size and modification time have not changed for one poll (so a file still
being copied in is left alone). After import it moves to DIR/done/ (something was read) or
DIR/failed/ (nothing could be read), with its summary beside it as NAME.summary.txt. Files whose
names start with "." or end in .tmp/.part are ignored: copy in under such a name, then rename."""

import sys
import time
from pathlib import Path

from lianxin.commands.progress import add_quiet, bar


def add_arguments(parser):
    parser.add_argument("folder", help="the drop folder")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    parser.add_argument("--once", action="store_true", help="import what is there, then exit")
    parser.add_argument(
        "--register-unknown",
        action="store_true",
        help="create unknown meters from the export's columns (see `import`)",
    )
    parser.add_argument("--unit", choices=["kWh", "kW"], help="see `lianxin import --unit`")
    add_quiet(parser)


def run(args) -> int:
    from lianxin.web.setup import require_migrated, setup_django

    setup_django()
    require_migrated()
    from django.conf import settings

    from lianxin.errors import LianxinError
    from lianxin.ingest.readers import Options

    folder = Path(args.folder)
    if not folder.is_dir():
        raise LianxinError(f"{folder} is not a folder")
    options = Options(time_zone=settings.TIME_ZONE, unit=args.unit)
    print(f"watching {folder} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    seen: dict[Path, tuple[int, int]] = {}
    from lianxin import health

    name = str(folder.resolve())
    try:
        while True:
            taken = poll(
                folder, seen, options, args.register_unknown, settle=not args.once, quiet=args.quiet
            )
            if taken:
                health.seen("folder", name)
            if args.once:
                return 0
            health.beat(f"watch {name}", every=args.interval, detail={"files": taken})
            if not taken:
                time.sleep(args.interval)
    finally:
        if not args.once:
            health.stopped(f"watch {name}")  # a clean stop is not a dead process


def poll(
    folder: Path,
    seen: dict,
    options,
    register_unknown: bool,
    settle: bool = True,
    quiet: bool = False,
) -> int:
    """One pass over the folder; returns how many files were imported."""
    from lianxin.ingest.pipeline import import_file

    taken = 0
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.suffix in (".tmp", ".part"):
            continue
        st = path.stat()
        stamp = (st.st_size, st.st_mtime_ns)
        if settle and seen.get(path) != stamp:
            seen[path] = stamp  # wait one more poll: it may still be being written
            continue
        seen.pop(path, None)
        with bar(unit=" rows", desc=path.name[-40:], quiet=quiet) as b:
            summary = import_file(
                path, options, register_unknown=register_unknown, progress=b.update
            )
        text = "\n".join(summary.lines())
        print(text, flush=True)
        target = folder / ("done" if summary.good else "failed")
        target.mkdir(exist_ok=True)
        dest = target / path.name
        if dest.exists():
            dest = target / f"{path.stem}-{time.strftime('%Y%m%dT%H%M%S')}{path.suffix}"
        (target / f"{dest.name}.summary.txt").write_text(text + "\n", encoding="utf-8")
        path.rename(dest)
        taken += 1
    return taken
