"""The `lianxin` command as a user meets it: a real process, its output and its exit code."""

import subprocess
import sys
from datetime import datetime, timedelta

from lianxin.cli import COMMANDS
from tests.services import subprocess_env


def lianxin(*args, home, env=None):
    # The suite's kind of database (see subprocess_env) unless a test names another one.
    full_env = subprocess_env(home, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "lianxin", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )


def test_help_lists_every_subcommand_with_a_description(tmp_path):
    result = lianxin("--help", home=tmp_path)
    assert result.returncode == 0
    for name, _module, description in COMMANDS:
        assert name in result.stdout
        assert description.split()[0] in result.stdout


def test_usage_errors_exit_2(tmp_path):
    assert lianxin(home=tmp_path).returncode == 2
    result = lianxin("no-such-command", home=tmp_path)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
    assert lianxin("serve", "--port", "eighty", home=tmp_path).returncode == 2
    result = lianxin("monitor", "--lateness", "-5", home=tmp_path)
    assert result.returncode == 2
    assert "--lateness -5 is not 0..10080 minutes" in result.stderr


def test_monitor_once_judges_up_to_the_clock_minus_lateness(tmp_path):
    assert lianxin("init", home=tmp_path).returncode == 0
    result = lianxin("monitor", "--once", "--lateness", "90", home=tmp_path)
    assert result.returncode == 0, result.stderr
    # "2026-11-27 07:20:48Z judged to 05:50:48Z readings 0 events 0 findings 0 alerts 0"
    date, clock, _, _, judged, *rest = result.stdout.split()
    assert rest[:2] == ["readings", "0"]
    stamp = datetime.fromisoformat(f"{date}T{clock[:-1]}")
    assert judged == f"{stamp - timedelta(minutes=90):%H:%M:%S}Z"


def test_failure_is_one_line_on_stderr_and_exit_1(tmp_path):
    result = lianxin("serve", home=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "run `lianxin init` first" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_is_named(tmp_path):
    result = lianxin("init", home=tmp_path, env={"LIANXIN_DEBUG": "maybe"})
    assert result.returncode == 1
    assert "LIANXIN_DEBUG='maybe' is not a boolean" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_unreachable_database_is_one_line(tmp_path):
    result = lianxin(
        "init", home=tmp_path, env={"DATABASE_URL": "postgres://nobody:x@127.0.0.1:1/none"}
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "Traceback" not in result.stderr


def test_init_creates_the_data_directory_and_database(tmp_path):
    home = tmp_path / "fresh" / "var"
    # The embedded default: an empty DATABASE_URL means SQLite in LIANXIN_HOME.
    result = lianxin("init", home=home, env={"DATABASE_URL": ""})
    assert result.returncode == 0, result.stderr
    assert (home / "lianxin.sqlite3").exists()
    assert "database ready" in result.stdout
    # The alias does the same, and running it again is harmless.
    assert lianxin("migrate", home=home, env={"DATABASE_URL": ""}).returncode == 0


def test_demo_seed_only_prints_logins_and_is_rerunnable(tmp_path):
    result = lianxin("demo", "--seed-only", "--seed", "5", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "240 households on 10 transformer areas" in result.stdout
    assert "operator" in result.stdout and "lianxin-demo" in result.stdout
    again = lianxin("demo", "--seed-only", home=tmp_path)
    assert again.returncode == 0
    assert "already seeded" in again.stdout
