"""`lianxin status` and `lianxin watchdog` as an operator or cron runs them: real processes on
their own data directory, their table, lines and exit codes."""

import pytest

from tests.test_cli import lianxin

pytestmark = pytest.mark.once

DEAD_MONITOR = (
    "from datetime import timedelta\n"
    "from django.utils import timezone\n"
    "from lianxin import health\n"
    "health.beat('monitor', every=60, at=timezone.now() - timedelta(minutes=30))\n"
)
LIVE_MONITOR = "from lianxin import health\nhealth.beat('monitor', every=60)\n"


def test_status_and_watchdog_say_what_is_wrong_and_exit_non_zero(tmp_path):
    assert lianxin("init", home=tmp_path).returncode == 0
    ok = lianxin("status", home=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "Lianxin status: OK" in ok.stdout and "system alerts: none open" in ok.stdout

    assert lianxin("manage", "shell", "-c", DEAD_MONITOR, home=tmp_path).returncode == 0
    watchdog = lianxin("watchdog", home=tmp_path)
    assert watchdog.returncode == 1
    assert watchdog.stdout.startswith("raised monitor_down monitor: The monitor has not stepped")
    bad = lianxin("status", home=tmp_path)
    assert bad.returncode == 1
    assert "UNHEALTHY" in bad.stdout and "monitor_down" in bad.stdout

    assert lianxin("manage", "shell", "-c", LIVE_MONITOR, home=tmp_path).returncode == 0
    back = lianxin("watchdog", home=tmp_path)
    assert back.returncode == 0
    assert back.stdout.startswith("cleared monitor_down monitor after ")
    assert lianxin("status", home=tmp_path).returncode == 0
