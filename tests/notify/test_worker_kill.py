"""kill -9 of the worker while it holds claims: nothing is lost, and a notification that
arrives twice carries the same idempotency key both times. Real processes, a real receiver,
the embedded SQLite database; 20 trials, each bounded."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.notify.receivers import HTTPReceiver

pytestmark = [pytest.mark.slow, pytest.mark.once]
TRIALS = 20
PER_TRIAL = 5


def env_for(home):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"LIANXIN_HOME": str(home), "LIANXIN_NOTIFY_LEASE_SECONDS": "1"}
    return env


def shell(env, code):
    done = subprocess.run(
        [sys.executable, "-m", "lianxin", "manage", "shell", "-c", code],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def worker(env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "lianxin", "notify-worker", "--every", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert "running" in proc.stdout.readline()
    return proc


def rows_of(home):
    # Read straight from SQLite: no Django start-up per poll.
    with sqlite3.connect(home / "lianxin.sqlite3") as db:
        return db.execute("SELECT text, key, status FROM notify_notification").fetchall()


def test_kill_9_between_claim_and_send_loses_nothing(tmp_path):
    env = env_for(tmp_path)
    init = subprocess.run([sys.executable, "-m", "lianxin", "init"], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert init.returncode == 0, init.stderr
    rng = random.Random(2026)
    with HTTPReceiver(delay=0.1) as r:
        shell(
            env,
            "from lianxin.notify.models import Channel\n"
            "from lianxin.notify.service import enqueue_system\n"
            f"Channel.objects.create(name='k', kind='webhook', url='{r.url}', secret='k')\n"
            f"for i in range({TRIALS * PER_TRIAL}): enqueue_system(f'k-{{i}}', 'warning', "
            "f'k-{i}', f'k-{i}')",
        )
        held = 0
        for _trial in range(TRIALS):
            proc = worker(env)
            time.sleep(rng.uniform(0.05, 0.4))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            held += any(status == "sending" for _t, _k, status in rows_of(tmp_path))
        # At least one kill caught the worker holding a claim: the case under test happened.
        assert held >= 1
        time.sleep(1.2)  # the dead workers' leases lapse
        proc = worker(env)
        try:
            for _ in range(600):
                rows = rows_of(tmp_path)
                if all(status == "sent" for _t, _k, status in rows):
                    break
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    assert len(rows) == TRIALS * PER_TRIAL
    assert {status for _t, _k, status in rows} == {"sent"}
    got = {}
    for g in r.got:
        got.setdefault(g.json["text"], set()).add(g.headers["Idempotency-Key"])
    # Nothing lost; every repeat carries the key of its notification.
    assert {text: {key} for text, key, _s in rows} == got
    assert len(r.got) >= len(rows)
