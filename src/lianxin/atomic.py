"""Durable replacement of a file: the one way Lianxin writes a file a crash must not leave half
written (store parts, the engine's state, quarantine files, exports). No Django.

The data goes to a temporary name in the same folder, is flushed and fsynced, renamed over the
destination (atomic on POSIX), and then the folder is fsynced so that the rename itself survives
a power cut. A reader sees the old file or the new one, never a mix; on an error the temporary is
removed and the destination is untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(
    path: Path | str, mode: str = "wb", *, tmp: Path | str | None = None, encoding=None
) -> Iterator[IO]:
    """Open a temporary beside `path` for writing (`mode` "wb" or "w"); on a clean exit make it
    `path`, durably. `tmp`: the temporary's name (default: ".<name>.tmp" in the same folder)."""
    path = Path(path)
    tmp = Path(tmp) if tmp is not None else path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path | str) -> None:
    """Make the entries of a folder (a rename, a new or removed file) survive a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def staged_write(tmp: Path | str, mode: str = "wb") -> Iterator[IO]:
    """The first half of atomic_write: the data written to `tmp`, flushed and fsynced, and left
    there for the caller to rename, so that several files (one per day of a batch) become
    visible only once all of them are written. On an error the temporary is removed."""
    tmp = Path(tmp)
    try:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
