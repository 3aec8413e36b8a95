"""`lianxin demo` as a new user runs it: it seeds, warms up on real curves, serves the duty room
and feeds live quarter-hours with incidents through the monitor."""

import subprocess
import sys
import urllib.request

from tests.services import free_port, subprocess_env


def test_demo_serves_the_duty_room_while_feeding_the_monitor(tmp_path):
    port = free_port()
    env = subprocess_env(tmp_path)
    cmd = [
        sys.executable,
        "-m",
        "lianxin",
        "demo",
        "--households",
        "48",
        "--warmup-days",
        "21",
        "--catch-up-hours",
        "6",
        "--step-seconds",
        "0.5",
        "--steps",
        "16",
        "--incident-every",
        "1",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("duty room: "):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
                    assert r.status == 200
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/accounts/login/", timeout=10
                ) as r:
                    assert "登录" in r.read().decode()
        assert proc.wait(timeout=240) == 0, "".join(lines)
    finally:
        proc.kill()
    out = "".join(lines)
    assert any(line.startswith("duty room: ") for line in lines), out  # and it was requested
    assert "seeded demo town" in out and "48 households" in out
    assert "engine warmed up on" in out
    assert "operator" in out and "lianxin-demo" in out
    assert "incident:" in out
    assert " raised " in out  # the monitor turned the feed into findings
