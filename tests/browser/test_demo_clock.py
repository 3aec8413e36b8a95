"""`lianxin demo` as a new user runs it, then looked at in Chromium (issue 12, defect 20): it
seeds, warms up on real curves, catches up on the last hours with incidents, and opens the duty
room with a queue whose times agree with the wall clock — alerts detected in the past, not
"17 h ago" for a new one, and each home's latest reading minutes old, not yesterday's. Then the
live feed runs until Ctrl-C.
"""

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from tests.browser.test_duty_room import LOCALES, shot, sign_in
from tests.browser.test_duty_room import chromium as chromium  # the module's one browser
from tests.services import free_port, subprocess_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CATCH_UP_HOURS = 6


def _start(tmp_path):
    port = free_port()
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
        str(CATCH_UP_HOURS),
        "--incident-every",
        "20",
        "--port",
        str(port),
    ]
    env = subprocess_env(tmp_path)
    env.pop("LIANXIN_BASE_URL", None)  # as a user starts it: the demo links to itself
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("live feed: "):
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    return proc, port, lines, ready


def test_the_demo_opens_with_its_clock_at_the_wall_clock(chromium, tmp_path):
    proc, port, lines, ready = _start(tmp_path)
    try:
        assert ready.wait(240) and proc.poll() is None, "".join(lines)
        base = f"http://127.0.0.1:{port}"
        # The alerts the catch-up left open reach the demo's inbox once the worker runs: the
        # channels exist before the catch-up raises them (an alert raised with no channel
        # configured never gets a notification chain).
        inbox = re.search(r"notifications: (http://\S+?)/ ", "".join(lines)).group(1)
        got: list = []
        deadline = time.monotonic() + 60
        while not got and time.monotonic() < deadline:
            with urllib.request.urlopen(inbox + "/messages.json", timeout=10) as r:
                got = json.loads(r.read())
            time.sleep(0 if got else 1)
        assert any(f"{base}/alerts/" in m["text"] + m["link"] for m in got), "".join(lines)
        tz = ZoneInfo(settings.TIME_ZONE)
        for lang in ("zh-hans", "en"):
            ctx = chromium.new_context(
                locale=LOCALES[lang], viewport={"width": 1440, "height": 900}
            )
            page = ctx.new_page()
            sign_in(page, base, "operator")
            assert page.url.endswith("/alerts/")
            # The catch-up raised alerts before the duty room opened: the queue is not empty,
            # none started in the future, the incidents of the hours caught up on are there,
            # and nothing is dated on a clock days behind. (A quiet spell raised in the catch-up
            # may have begun before it, in the warm-up's last day: its "since" is its start.)
            ages = page.locator("#queue-rows td.age")
            assert ages.count() >= 1, "".join(lines)
            now = datetime.now(tz).replace(tzinfo=None)
            started = [
                datetime.strptime(title, "%Y-%m-%d %H:%M")
                for title in ages.evaluate_all("tds => tds.map(td => td.title)")
            ]
            assert all(now - timedelta(hours=30) < t <= now for t in started), started
            recent = now - timedelta(hours=CATCH_UP_HOURS + 1)
            assert any(t > recent for t in started), started
            shot(page, f"demo-queue-{lang}")
            # A home's case (a row naming its resident, not an area's outage) and its chart:
            # the latest reading is minutes old, not stale.
            page.locator("#queue-rows tr[data-id]:has(td strong) td.kind a").first.click()
            page.wait_for_load_state("networkidle")
            page.wait_for_function(
                "() => /\\(.+\\)/.test(document.getElementById('freshness').textContent)"
            )
            fresh = page.locator("#freshness")
            # "(12 min ago)", "(12分钟前)": minutes, not hours.
            minutes = re.search(r"\((\d+) ?(min|分钟)", fresh.inner_text())
            assert minutes and int(minutes.group(1)) <= 35, fresh.inner_text()
            assert "stale" not in (fresh.get_attribute("class") or "")
            shot(page, f"demo-case-{lang}")
            ctx.close()
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
    out = "".join(lines)
    assert "seeded demo town" in out and "48 households" in out
    assert "engine warmed up on" in out
    assert "caught up " in out
    assert "operator" in out and "lianxin-demo" in out
    assert "incident:" in out and " raised " in out
    assert "interrupted" in out
