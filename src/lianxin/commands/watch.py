"""`lianxin watch DIR`: import files dropped into a folder.

A file is taken once its size and modification time have not changed for one poll (so a file still
being copied in is left alone). After import it moves to DIR/done/ (something was read) or
DIR/failed/ (nothing could be read), with its summary beside it as NAME.summary.txt. Files whose
names start with "." or end in .tmp/.part are ignored: copy in under such a name, then rename.

Safety: links (symbolic or hard), devices and anything outside the folder are refused (moved to
failed/ unread, never followed); done/ and failed/ must be real folders inside DIR. Any failure
while importing a file moves it to failed/ with the reason, so one file never stops the watch.
Summaries are 0600 and a failed file's summary never quotes its content."""

import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path

from lianxin.commands.import_ import add_register_arguments, register_options
from lianxin.commands.progress import add_quiet, bar
from lianxin.errors import LianxinError


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
    # (--interval is the poll here: the readings' interval is --reading-interval)
    add_register_arguments(parser, flag="--reading-interval")
    add_quiet(parser)


def run(args) -> int:
    from lianxin.web.setup import require_migrated, setup_django

    setup_django()
    require_migrated()
    from django.conf import settings

    from lianxin.ingest.readers import Options

    folder = Path(args.folder)
    if not folder.is_dir():
        raise LianxinError(f"{folder} is not a folder")
    options = Options(
        time_zone=settings.TIME_ZONE,
        unit=args.unit,
        **register_options(args, args.reading_interval),
    )
    print(f"watching {folder} (Ctrl-C or SIGTERM to stop)", file=sys.stderr, flush=True)
    seen: dict[Path, tuple[int, int]] = {}
    from lianxin import health

    # SIGTERM (systemd, docker stop) stops after the file in hand, cleanly: a stop that was
    # asked for must not raise "process down" in the duty room.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    name = str(folder.resolve())
    try:
        while not stop.is_set():
            taken = poll(
                folder,
                seen,
                options,
                args.register_unknown,
                settle=not args.once,
                quiet=args.quiet,
                stop=stop,
            )
            if taken:
                health.seen("folder", name)
            if args.once:
                return 0
            health.beat(f"watch {name}", every=args.interval, detail={"files": taken})
            if not taken:
                stop.wait(args.interval)
        print(f"stopped watching {folder}", file=sys.stderr, flush=True)
        return 0
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
    stop: threading.Event | None = None,
) -> int:
    """One pass over the folder; returns how many files were taken (imported or refused)."""
    import polars as pl

    from lianxin.ingest.pipeline import import_file, redact

    done, failed = _outboxes(folder)
    taken = 0
    for path in sorted(folder.iterdir()):
        if stop is not None and stop.is_set():
            break  # asked to stop: the files left are taken by the next run
        if path.name.startswith(".") or path.suffix in (".tmp", ".part"):
            continue
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            continue  # done/, failed/ and folders of the operator's own
        refusal = _refusal(path, st, folder)
        if refusal is not None:
            # Not opened, not followed: the link (or device, or second name of a file kept
            # elsewhere) itself moves to failed/, so the refusal is said once.
            seen.pop(path, None)
            _file_away(path, failed, f"{path}: REFUSED: {refusal}")
            taken += 1
            continue
        stamp = (st.st_size, st.st_mtime_ns)
        if settle and seen.get(path) != stamp:
            seen[path] = stamp  # wait one more poll: it may still be being written
            continue
        seen.pop(path, None)
        try:
            with bar(unit=" rows", desc=path.name[-40:], quiet=quiet) as b:
                summary = import_file(
                    path, options, register_unknown=register_unknown, progress=b.update
                )
            summary.error = redact(summary.error)
            text = "\n".join(summary.lines())
            good = summary.good
        except (Exception, pl.exceptions.PanicException) as exc:  # noqa: BLE001
            # Whatever a file does to the readers, it moves to failed/ with the reason: a file
            # left in place would crash the watcher again on every restart.
            text = f"{path}: FAILED: {type(exc).__name__}: {redact(str(exc))}"
            good = 0
            _record_crash(path, text)
        print(text, flush=True)
        _file_away(path, done if good else failed, text)
        taken += 1
    return taken


def _outboxes(folder: Path) -> tuple[Path, Path]:
    """done/ and failed/: real folders inside the drop folder. A planted link in their place
    (failed -> readings/day=…) would send files into the live store: refused."""
    out = []
    for name in ("done", "failed"):
        box = folder / name
        try:
            st = os.lstat(box)
        except FileNotFoundError:
            box.mkdir(mode=0o700)
            st = os.lstat(box)
        if not stat.S_ISDIR(st.st_mode):
            raise LianxinError(
                f"{box} is not a folder (a link or a file stands in its place): remove it; "
                "lianxin watch moves files only into real folders inside the drop folder"
            )
        out.append(box)
    return out[0], out[1]


def _refusal(path: Path, st: os.stat_result, folder: Path) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link: lianxin watch never follows links (copy the file in instead)"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_nlink > 1:
        return "a second name (hard link) of a file kept elsewhere: copy the file in instead"
    if path.resolve().parent != folder.resolve():
        return "outside the drop folder"
    return None


def _file_away(path: Path, target: Path, text: str) -> None:
    dest = target / path.name
    if os.path.lexists(dest):
        dest = target / f"{path.stem}-{time.strftime('%Y%m%dT%H%M%S')}{path.suffix}"
    summary = target / f"{dest.name}.summary.txt"
    # The summary is for the operator only (0600), written without following a planted link.
    fd = os.open(summary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    os.rename(path, dest)  # renames a link itself, never its target


def _record_crash(path: Path, text: str) -> None:
    """A file that crashed the readers still leaves an import run saying so."""
    from django.utils import timezone

    from lianxin.ingest.models import ImportRun, db_text

    run = ImportRun.objects.filter(source=str(path)[:500], finished_at__isnull=True).last()
    if run is None:
        run = ImportRun(source=db_text(str(path), 500))
    run.status = ImportRun.Status.FAILED
    run.message = db_text(text, 2000)
    run.finished_at = timezone.now()
    run.save()
