"""The subprocess tests (serve, MQTT, CLI, demo) run on the database the suite is configured
for: on CI's PostgreSQL pass a `lianxin` subprocess must use PostgreSQL, not quietly fall back to
SQLite in its data directory."""

import subprocess
import sys

from tests.services import configured_postgres, subprocess_db_rows, subprocess_env


def test_a_subprocess_uses_the_configured_database(tmp_path):
    env = subprocess_env(tmp_path)
    init = subprocess.run(
        [sys.executable, "-m", "lianxin", "init"], env=env, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    probe = subprocess.run(
        [sys.executable, "-m", "lianxin", "manage", "shell", "-c"]
        + ["from django.db import connection; print(connection.vendor)"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    vendor = probe.stdout.split()[-1]
    sqlite_file = tmp_path / "lianxin.sqlite3"
    if configured_postgres():
        assert vendor == "postgresql"
        assert not sqlite_file.exists(), "a subprocess wrote a SQLite database"
    else:
        assert vendor == "sqlite"
        assert sqlite_file.exists()
    # What init migrated is in the database the test reads back, whichever it is.
    [(applied,)] = subprocess_db_rows(env, tmp_path, "SELECT count(*) FROM django_migrations")
    assert applied > 10
