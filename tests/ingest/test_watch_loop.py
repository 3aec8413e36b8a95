"""`lianxin watch DIR` as it runs in production: a real process polling a drop folder. A good
file is imported once and moved to done/; a file nothing can be read from is quarantined whole
in failed/ with its summary and a failed import run; a file still being written is left alone
until it has settled; names that say "not finished" (.part, .tmp, dot files) are never taken."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

from lianxin.store import ReadingsStore
from tests.services import subprocess_db_rows, subprocess_env

FIXTURES = Path(__file__).parents[1] / "data" / "ingest"
CURVE = "sgcc_load_curve_kw_gbk.csv"


def wait_for(condition, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(message())


def test_watch_imports_settled_files_and_quarantines_unreadable_ones(tmp_path):
    home, drop = tmp_path / "home", tmp_path / "drop"
    drop.mkdir()
    env = subprocess_env(home)
    init = subprocess.run(
        [sys.executable, "-m", "lianxin", "init"], env=env, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "lianxin", "watch", str(drop), "--interval", "0.3"]
        + ["--register-unknown"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Copied in under a .part name, then renamed: the documented way.
        shutil.copy(FIXTURES / CURVE, drop / f"{CURVE}.part")
        (drop / ".hidden.csv").write_bytes(b"not for us")
        (drop / f"{CURVE}.part").rename(drop / CURVE)
        (drop / "garbage.csv").write_bytes(bytes(range(256)) * 8)
        done, failed = drop / "done", drop / "failed"
        wait_for(
            lambda: (done / CURVE).exists() and (failed / "garbage.csv").exists(),
            120,
            lambda: f"not moved: {sorted(p.name for p in drop.rglob('*'))}",
        )
        summary = (done / f"{CURVE}.summary.txt").read_text(encoding="utf-8")
        assert "accepted 1,152" in summary
        assert "FAILED" in (failed / "garbage.csv.summary.txt").read_text(encoding="utf-8")
        assert (failed / "garbage.csv").read_bytes() == bytes(range(256)) * 8  # kept whole

        # A file that keeps growing is not taken mid-copy; once it settles it is.
        growing = drop / "late.csv"
        body = (FIXTURES / CURVE).read_bytes()
        with open(growing, "wb") as fh:
            for k in range(0, len(body), 200):
                fh.write(body[k : k + 200])
                fh.flush()
                time.sleep(0.02)
                assert not (done / "late.csv").exists()
                assert not (failed / "late.csv").exists()
        wait_for(
            lambda: (done / "late.csv").exists(),
            60,
            lambda: f"not taken: {sorted(p.name for p in drop.rglob('*'))}",
        )
        # The same readings again: all duplicates, nothing stored twice.
        again = (done / "late.csv.summary.txt").read_text(encoding="utf-8")
        assert "duplicate 1,152" in again
        assert (drop / ".hidden.csv").exists()  # never taken
        assert proc.poll() is None  # still watching
    finally:
        proc.terminate()  # SIGTERM, as systemd and docker stop it
        output = proc.communicate(timeout=30)[0]
    assert "watching" in output
    # A stop that was asked for is clean: exit 0, said, and marked so the watchdog does not
    # page the duty room about a dead process.
    assert proc.returncode == 0, output
    assert f"stopped watching {drop}" in output
    beats = subprocess_db_rows(
        env, home, "SELECT process, stopped_at FROM health_heartbeat WHERE process LIKE 'watch %'"
    )
    assert len(beats) == 1 and beats[0][1] is not None, beats
    assert ReadingsStore(home / "readings").read().height == 1152
    runs = subprocess_db_rows(
        env, home, "SELECT source, status FROM ingest_importrun ORDER BY id"
    )
    assert sorted((Path(s).name, st) for s, st in runs) == [
        ("garbage.csv", "failed"),
        ("late.csv", "ok"),
        (CURVE, "ok"),
    ]
