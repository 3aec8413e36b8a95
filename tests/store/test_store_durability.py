"""Durability proven, not assumed.

1. The order of the system calls of a real `write()`: the new file's data is fsynced, then it is
   renamed to its final name, then its folder is fsynced, all before `write()` returns. The calls
   are recorded on their way to the real functions (nothing is faked).
2. A writer killed (SIGKILL, no clean-up) at each step of a write, deterministically: nothing
   acknowledged is lost, no half-written file is ever visible, the batch in flight is there
   wholly or not at all, and the store takes writes and compacts afterwards.
"""

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from lianxin.store import ReadingsStore

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def batch(meter: str, n: int = 96, value: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "meter": [meter] * n,
            "ts": [T0 + timedelta(minutes=15 * i) for i in range(n)],
            "value": [value] * n,
            "unit": ["kWh"] * n,
        }
    )


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.fixture
def syscalls(monkeypatch):
    """Records fsync, rename and replace calls made through the os module, then makes them."""
    calls: list[tuple] = []
    real_fsync, real_rename, real_replace = os.fsync, os.rename, os.replace

    def fsync(fd):
        path = _fd_path(fd if isinstance(fd, int) else fd.fileno())
        real_fsync(fd)
        calls.append(("fsync", path))

    def rename(src, dst, *a, **k):
        real_rename(src, dst, *a, **k)
        calls.append(("rename", str(src), str(dst)))

    def replace(src, dst, *a, **k):
        real_replace(src, dst, *a, **k)
        calls.append(("rename", str(src), str(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "replace", replace)
    return calls


def test_write_syncs_the_file_then_renames_then_syncs_the_folder(tmp_path, syscalls):
    store = ReadingsStore(tmp_path)
    result = store.write(batch("m1"))
    assert result.accepted == 96
    [final] = list(tmp_path.glob("day=*/*.parquet"))
    folder = str(final.parent)
    # One day: exactly one new file; its temporary name is never a *.parquet a reader would list.
    renames = [c for c in syscalls if c[0] == "rename"]
    assert len(renames) == 1
    _, tmp, dst = renames[0]
    assert dst == str(final) and not tmp.endswith(".parquet") and Path(tmp).parent == final.parent
    order = syscalls.index(("fsync", tmp)), syscalls.index(renames[0]), syscalls.index(
        ("fsync", folder)
    )
    assert order[0] < order[1] < order[2], syscalls
    # All of it happened inside write(): nothing is left for later.
    assert syscalls[-1] == ("fsync", folder)


def test_compaction_syncs_its_file_before_the_old_ones_go(tmp_path, syscalls, monkeypatch):
    store = ReadingsStore(tmp_path)
    store.write(batch("m1"))
    store.write(batch("m2"))
    old = sorted(tmp_path.glob("day=*/*.parquet"))
    removed = []
    real_unlink = Path.unlink

    def unlink(self, *a, **k):
        real_unlink(self, *a, **k)
        removed.append(str(self))
        syscalls.append(("unlink", str(self)))

    monkeypatch.setattr(Path, "unlink", unlink)
    syscalls.clear()
    assert store.compact(full=True) >= 2
    [new] = list(tmp_path.glob("day=*/*.parquet"))
    rename = next(c for c in syscalls if c[0] == "rename")
    assert rename[2] == str(new)
    first_unlink = next(i for i, c in enumerate(syscalls) if c[0] == "unlink")
    # The merged file is durable under its name before any file it replaces is removed, and
    # the removals are made durable before compact() returns.
    assert syscalls.index(("fsync", rename[1])) < syscalls.index(rename) < first_unlink
    assert syscalls.index(("fsync", str(new.parent))) < first_unlink
    assert set(removed) >= {str(p) for p in old}
    assert syscalls[-1] == ("fsync", str(new.parent))


# A writer that acknowledges one batch, then dies by SIGKILL at one named step of the next.
CRASHER = textwrap.dedent(
    """
    import builtins, os, signal, sys
    from datetime import UTC, datetime, timedelta
    import polars as pl
    from lianxin.store import ReadingsStore
    import lianxin.atomic as atomic

    root, step = sys.argv[1], sys.argv[2]
    t0 = datetime(2024, 3, 1, tzinfo=UTC)

    def batch(meter, value):
        return pl.DataFrame({
            "meter": [meter] * 96,
            "ts": [t0 + timedelta(minutes=15 * i) for i in range(96)],
            "value": [value] * 96,
            "unit": ["kWh"] * 96,
        })

    store = ReadingsStore(root)
    store.write(batch("acked", 1.0))
    print("acked", flush=True)

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    real_open, real_fsync = builtins.open, os.fsync
    real_rename, real_replace = os.rename, os.replace

    class HalfWriter:
        # Writes half of the first chunk of file data, then dies: a file cut mid-write.
        def __init__(self, fh):
            self.fh = fh
        def write(self, data):
            self.fh.write(bytes(data)[: max(1, len(data) // 2)])
            self.fh.flush()
            die()
        def __getattr__(self, name):
            return getattr(self.fh, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.fh.__exit__(*exc)

    def open_(path, mode="r", *a, **k):
        fh = real_open(path, mode, *a, **k)
        if step == "mid-write" and "w" in mode and str(path).startswith(root):
            return HalfWriter(fh)
        return fh

    def is_dir(fd):
        import stat
        return stat.S_ISDIR(os.fstat(fd).st_mode)

    def fsync(fd):
        if step == "before-file-fsync" and not is_dir(fd):
            die()
        real_fsync(fd)
        if step == "after-file-fsync" and not is_dir(fd):
            die()
        if step == "after-folder-fsync" and is_dir(fd):
            die()

    def rename(src, dst, *a, **k):
        real_rename(src, dst, *a, **k)
        if step == "after-rename":
            die()

    def replace(src, dst, *a, **k):
        real_replace(src, dst, *a, **k)
        if step == "after-rename":
            die()

    atomic.open = open_  # the store writes its files through lianxin.atomic
    os.fsync, os.rename, os.replace = fsync, rename, replace
    store.write(batch("inflight", 2.0))
    print("second write returned", flush=True)
    """
)

STEPS = [
    "mid-write",
    "before-file-fsync",
    "after-file-fsync",
    "after-rename",
    "after-folder-fsync",
]


@pytest.mark.parametrize("step", STEPS)
def test_a_writer_killed_at_each_step_loses_nothing_acknowledged(tmp_path, step):
    proc = subprocess.run(
        [sys.executable, "-c", CRASHER, str(tmp_path), step],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.split("\n")[0] == "acked" and "returned" not in proc.stdout
    # Every file a reader lists is whole.
    for f in tmp_path.glob("day=*/*.parquet"):
        assert pq.read_metadata(f).num_rows == 96, f
    store = ReadingsStore(tmp_path)
    df = store.read()
    counts = dict(df.group_by("meter").len().iter_rows())
    assert counts["acked"] == 96  # acknowledged: never lost
    inflight = counts.get("inflight", 0)
    assert inflight in (0, 96)  # the batch in flight: all or nothing
    if step in ("after-rename", "after-folder-fsync"):
        assert inflight == 96  # under its final name: it is there
    else:
        assert inflight == 0
    # The store carries on: the batch sent again is taken, and compaction tidies up.
    again = store.write(batch("inflight", value=2.0))
    assert again.accepted + again.duplicate == 96
    store.compact(full=True)
    assert store.read().height == 192
