"""The monitor killed with SIGKILL under a running web app (real processes, a real Chromium):
within the set time the system-alert banner is on the duty room's queue, /healthz says 503 and
the web process has sent the raised signal to a loopback receiver; the monitor restarted, the
alert clears by itself with the time it lasted, the banner goes and /healthz is 200 again.

The screenshot of the banner is test-artifacts/system-alert-banner.png."""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.browser.test_duty_room import ARTIFACTS, CHROMIUM_ARGS, chromium, sign_in  # noqa: F401
from tests.ingest.test_mqtt import _wait_for
from tests.services import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.once]
ROOT = Path(__file__).resolve().parents[2]
STALE_MINUTES = 0.1  # the monitor is declared down after 6 s without a step


class Receiver:
    """A loopback HTTP endpoint that keeps what it is sent."""

    def __init__(self):
        self.received: list[dict] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, kind):
        return [(r["event"], r) for r in self.received if r["kind"] == kind]


class Site:
    """A data directory with its own SQLite database and the processes that serve it."""

    def __init__(self, home: Path, receiver: Receiver):
        self.env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self.env.update(
            LIANXIN_HOME=str(home),
            DJANGO_SETTINGS_MODULE="tests.health.site_settings",
            PYTHONPATH=str(ROOT),
            LIANXIN_TEST_RECEIVER=receiver.url,
            LIANXIN_MONITOR_STALE_MINUTES=str(STALE_MINUTES),
            LIANXIN_HEALTH_CHECK_SECONDS="1",
        )
        self.procs: list[subprocess.Popen] = []
        result = self.run("demo", "--seed-only", "--households", "12")
        assert result.returncode == 0, result.stderr

    def run(self, *args):
        return subprocess.run(
            [sys.executable, "-m", "lianxin", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, *args) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lianxin", *args],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=20)


def healthz(port) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def _healthz_or_none(port):
    try:
        return healthz(port)
    except OSError:
        return None, {}


def _monitor_beating(port):
    status, body = _healthz_or_none(port)
    return status == 200 and any(p["process"] == "monitor" for p in body.get("processes", []))


def test_a_killed_monitor_shows_on_the_queue_and_clears_on_restart(chromium, tmp_path):  # noqa: F811
    receiver = Receiver()
    site = Site(tmp_path / "home", receiver)
    port = free_port()
    try:
        site.start("serve", "--port", str(port))
        _wait_for(lambda: _healthz_or_none(port)[0] == 200, 60, "lianxin serve did not start")
        monitor = site.start("monitor", "--every", "1")
        _wait_for(lambda: _monitor_beating(port), 60, "the monitor does not beat")

        ctx = chromium.new_context(locale="en-GB", viewport={"width": 1280, "height": 800})
        page = ctx.new_page()
        sign_in(page, f"http://127.0.0.1:{port}", "operator")
        assert page.url.endswith("/alerts/")
        assert page.locator(".system-alerts").count() == 0

        monitor.send_signal(signal.SIGKILL)
        monitor.wait(timeout=10)
        killed_at = time.monotonic()
        # The page is not reloaded: the banner arrives by itself.
        banner = page.locator('.system-alerts li[data-kind="monitor_down"]')
        banner.wait_for(timeout=60_000)
        assert "monitor has not stepped" in banner.inner_text()
        assert page.locator(".system-alerts button").count() == 0  # nothing to dismiss it
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "system-alert-banner.png"), full_page=True)
        status, body = healthz(port)
        assert status == 503
        assert [a["kind"] for a in body["system_alerts"]] == ["monitor_down"]
        _wait_for(lambda: receiver.events("monitor_down"), 30, "no raised signal received")
        assert [e for e, _ in receiver.events("monitor_down")] == ["raised"]
        # Every page shows it, not only the queue.
        page.goto(f"http://127.0.0.1:{port}/dispatch/orders/")
        assert page.locator('.system-alerts li[data-kind="monitor_down"]').count() == 1
        page.goto(f"http://127.0.0.1:{port}/alerts/")

        site.start("monitor", "--every", "1")
        page.locator(".system-alerts").wait_for(state="detached", timeout=60_000)
        _wait_for(lambda: healthz(port)[0] == 200, 30, "/healthz does not recover")
        _wait_for(lambda: len(receiver.events("monitor_down")) == 2, 30, "no cleared signal")
        event, cleared = receiver.events("monitor_down")[1]
        assert event == "cleared"
        lasted = cleared["duration_s"]
        assert 0 < lasted <= time.monotonic() - killed_at
        ctx.close()
    finally:
        site.stop_all()
        receiver.server.shutdown()
