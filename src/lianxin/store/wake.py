"""The doorbell: how a writer tells the monitor that something new is there to judge.

A named pipe (FIFO) in the data directory, `<LIANXIN_HOME>/doorbell`. Whoever stores readings
or events (the push API, the MQTT subscriber, an import, `watch`) writes one byte to it after
the data is durable; the monitor waits on it with a timeout (its step interval), so a reading
pushed now is judged now instead of at the next timer step, on SQLite and PostgreSQL alike and
without polling. Writers never block and never fail because of it: with no monitor listening
(no reader) or a full pipe (a monitor busy with a long step: it will read the store anyway)
the ring is dropped. A ring is a hint, never the data: the monitor reads the store.

Bytes say what changed: DATA (b"d") new readings, events, payments or balances; REGISTRY (b"r")
homes, meters or residents' settings changed (see lianxin.health.apps), which the monitor also
learns from the stamp file `<LIANXIN_HOME>/monitor/registry.changed`, because a ring can be
dropped while a stamp cannot.

No Django here (the store is read by the engine and by Spark tasks too).
"""

from __future__ import annotations

import errno
import json
import os
import select
import stat
import time
from collections.abc import Iterable
from pathlib import Path

DATA = b"d"
REGISTRY = b"r"
DOORBELL = "doorbell"
REGISTRY_STAMP = Path("monitor") / "registry.changed"


def ring(home: Path | str, what: bytes = DATA) -> bool:
    """Tell a waiting monitor; True when someone was listening. Never raises for want of one."""
    path = Path(home) / DOORBELL
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return False  # no monitor has ever run on this data directory
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):  # ENXIO: nobody has it open to read
            return False
        raise
    try:
        os.write(fd, what)
        return True
    except BlockingIOError:
        return True  # full: the monitor has rings it has not read yet, it will read the store
    except BrokenPipeError:
        return False
    finally:
        os.close(fd)


def stamp_registry(home: Path | str, homes: Iterable[str] | None = None) -> None:
    """Record that homes, meters or settings changed, and ring. The stamp is what counts (its
    modification time, see registry_stamp); the ring wakes a monitor that is waiting.
    `homes`: the household codes whose homes, meters or residents changed, when that is all
    that changed (one edit in the web app): the monitor then reads those homes again, not the
    whole registry (see registry_changes). None: anything may have changed (a bulk import,
    a transformer area renamed)."""
    path = Path(home) / REGISTRY_STAMP
    path.parent.mkdir(parents=True, exist_ok=True)
    # One line per change, appended in one write. A new content each time: the modification
    # time moves even within the file system's timestamp granularity on the next stat.
    line = f"{time.time_ns()}"
    if homes is not None:
        line += " " + json.dumps(sorted(set(homes)), ensure_ascii=True)
    with open(path, "a", encoding="ascii") as fh:
        fh.write(line + "\n")
    ring(home, REGISTRY)


def registry_changes(home: Path | str, offset: int) -> tuple[int, set[str] | None]:
    """What the stamp file says changed after byte `offset` (see stamp_registry): (the offset
    read up to, the household codes named), or codes None when anything may have changed (a
    change naming no homes, a line that does not read, or a file shorter than `offset`: made
    anew). A line still being written is left for the next call."""
    try:
        with open(Path(home) / REGISTRY_STAMP, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < offset:
                return size, None
            fh.seek(offset)
            data = fh.read(size - offset)
    except FileNotFoundError:
        return 0, (set() if offset == 0 else None)
    end = data.rfind(b"\n") + 1
    codes: set[str] = set()
    for line in data[:end].splitlines():
        _ns, _sep, named = line.partition(b" ")
        try:
            homes = json.loads(named) if named else None
        except ValueError:
            homes = None
        if not isinstance(homes, list) or not all(isinstance(h, str) for h in homes):
            return offset + end, None
        codes.update(homes)
    return offset + end, codes


def registry_stamp(home: Path | str) -> tuple[int, int] | None:
    """(modification time ns, size) of the registry stamp, None when nothing was ever stamped."""
    try:
        st = os.stat(Path(home) / REGISTRY_STAMP)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


class Doorbell:
    """The monitor's side: owns the pipe and waits on it.

    The pipe is opened read-write, so it never reads as closed when the last writer goes (a
    read-only FIFO without writers is always "readable" at end of file, which would spin)."""

    def __init__(self, home: Path | str):
        self.path = Path(home) / DOORBELL
        try:
            st = os.lstat(self.path)
            if not stat.S_ISFIFO(st.st_mode):
                self.path.unlink()  # a stray regular file of that name
                raise FileNotFoundError
        except FileNotFoundError:
            try:
                os.mkfifo(self.path, 0o660)
            except FileExistsError:
                pass
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)

    def drain(self) -> bytes:
        """What rang since the last drain (empty when nothing did)."""
        out = b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            if not chunk:
                return out
            out += chunk

    def wait(self, timeout: float) -> bytes:
        """Wait up to `timeout` seconds for a ring; returns what rang (empty at the timeout)."""
        if timeout > 0:
            try:
                select.select([self.fd], [], [], timeout)
            except InterruptedError:  # a signal (SIGTERM): the caller looks at its flags
                pass
        return self.drain()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
