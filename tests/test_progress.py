"""Long commands show a progress bar on a terminal (a real pseudo-terminal here), and nothing
but their usual summary in a pipe or with --quiet."""

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.once
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "lcl_sample.parquet"
EXPORT = ROOT / "tests" / "data" / "ingest" / "sgcc_load_curve_kwh_p96_utf8.csv"


def _env(home):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["LIANXIN_HOME"] = str(home)
    return env


def on_terminal(args, home) -> tuple[int, str]:
    """Run `lianxin ARGS` with stdout and stderr on a pseudo-terminal; all it wrote, and rc."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lianxin", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=_env(home),
        close_fds=True,
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    return proc.wait(timeout=120), out.decode("utf-8", "replace")


def in_pipe(args, home) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lianxin", *args],
        capture_output=True,
        text=True,
        env=_env(home),
        timeout=120,
    )


def replay_args(tmp_path, *extra):
    return ["replay", "--readings", str(SAMPLE), "--tz", "Europe/London"] + [
        "--out",
        str(tmp_path / "findings.jsonl"),
        *extra,
    ]


def test_replay_shows_progress_on_a_terminal_only(tmp_path):
    rc, shown = on_terminal(replay_args(tmp_path), tmp_path)
    assert rc == 0
    # A bar: percentage, count of total ticks, rate; then the usual summary.
    assert "replay: 100%|" in shown and "ticks/s" in shown
    assert "replayed in" in shown.splitlines()[-1]

    piped = in_pipe(replay_args(tmp_path), tmp_path)
    assert piped.returncode == 0
    assert "ticks/s" not in piped.stderr and "\r" not in piped.stderr
    assert piped.stdout.startswith("replayed in")

    rc, shown = on_terminal(replay_args(tmp_path, "--quiet"), tmp_path)
    assert rc == 0 and "ticks/s" not in shown and "replayed in" in shown


def test_import_shows_rows_read_on_a_terminal_only(tmp_path):
    assert in_pipe(["init"], tmp_path).returncode == 0
    args = ["import", str(EXPORT), "--register-unknown"]
    rc, shown = on_terminal(args, tmp_path)
    assert rc == 0
    assert "rows/s" in shown
    piped = in_pipe(args, tmp_path)
    assert piped.returncode == 0
    assert "rows/s" not in piped.stderr + piped.stdout
    # The summary it always printed is still there, in both.
    assert "accepted" in shown and "accepted" in piped.stdout
