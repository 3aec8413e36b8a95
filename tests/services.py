"""Finding the real programs some tests need (mosquitto, chromium, PostgreSQL).

Outside CI a missing program skips the test, with the install command in the reason. Under
CI=true nothing skips: a missing program fails the test, because CI must test the real thing.
"""

import os
import shutil
import socket

import pytest

IN_CI = os.environ.get("CI") == "true"


def free_port() -> int:
    """A local TCP port nobody listens on now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_program(name: str, package: str | None = None) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/local/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if path:
        return path
    message = f"{name} is not installed (apt-get install {package or name})"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


# ---- the database of `lianxin` subprocesses ------------------------------------------------------

_subprocess_databases: dict[str, str] = {}


def configured_postgres() -> str | None:
    """DATABASE_URL when the suite runs on PostgreSQL (as CI's second pass does), else None."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def subprocess_env(home, **extra: str) -> dict[str, str]:
    """The environment of a `lianxin` subprocess on its own data directory `home`, on the kind of
    database the suite runs on: SQLite in `home` by default; with DATABASE_URL on PostgreSQL, a
    fresh database of its own on that server (one per home, dropped when the tests end). Dropping
    DATABASE_URL instead would quietly test the PostgreSQL pass on SQLite."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["LIANXIN_HOME"] = str(home)
    url = configured_postgres()
    if url:
        key = str(home)
        if key not in _subprocess_databases:
            _subprocess_databases[key] = _fresh_postgres_database(url)
        env["DATABASE_URL"] = _subprocess_databases[key]
    env.update(extra)
    return env


def _fresh_postgres_database(url: str) -> str:
    import atexit
    from urllib.parse import urlsplit

    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/')}_sub_{os.getpid()}_{len(_subprocess_databases)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    atexit.register(drop)
    return parts._replace(path=f"/{name}").geturl()


def subprocess_db_rows(env: dict[str, str], home, sql: str) -> list[tuple]:
    """Rows of a query on the database a subprocess with `env` uses (see subprocess_env)."""
    url = env.get("DATABASE_URL")
    if url:
        import psycopg

        with psycopg.connect(url) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
    import sqlite3
    from pathlib import Path

    with sqlite3.connect(Path(home) / "lianxin.sqlite3") as db:
        return db.execute(sql).fetchall()
