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
