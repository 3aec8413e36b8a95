"""Progress bars for long commands, on stderr, only on a terminal.

tqdm rather than rich: it does one job (a progress line with count, rate and time left), has
no dependencies of its own, and turns itself off when stderr is not a terminal, so pipes, cron
and logs get only the summaries the commands print today. The engine and the importers know
nothing of it: they take a plain callback, made here.
"""

from __future__ import annotations

import os
import sys


def add_quiet(parser) -> None:
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar (there is none off a terminal)"
    )


def bar(*, total: int | None = None, unit: str = "it", desc: str = "", quiet: bool = False):
    from tqdm import tqdm

    on = not quiet and sys.stderr.isatty()
    try:
        width = os.get_terminal_size(sys.stderr.fileno()).columns if on else 0
    except OSError:
        width = 0
    return tqdm(
        total=total,
        unit=unit,
        desc=desc,
        file=sys.stderr,
        disable=not on,
        unit_scale=True,
        # A terminal that does not say its size (a bare pty) gets 80x24: at 0x0 tqdm hides the bar.
        dynamic_ncols=width > 0,
        ncols=None if width > 0 else 80,
        nrows=None if width > 0 else 24,
        leave=False,  # the command's own summary takes its place
        mininterval=0.2,
    )


def ticks(b):
    """A progress(done, total) callback for the engine (replay, a warm-up step)."""

    def update(done: int, total: int) -> None:
        if b.total != total:
            b.total = total
        b.update(done - b.n)

    return update
