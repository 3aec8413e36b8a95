"""Notification figures on the demo town (SQLite, a fresh temporary data directory):

1. latency: N alerts opened at once (default 100, no_power, one per enrolled home); the worker
   runs as its own process (`lianxin notify-worker`); prints the median, 90th percentile and
   worst time from the finding (just before apply_findings) to the first notification's
   arrival at a loopback webhook receiver. Run twice: with an instant receiver, and with one
   that takes PROVIDER_DELAY s (default 0.3) to answer, as an SMS gateway or robot API does;
   LIANXIN_NOTIFY_SENDERS=1 in the environment shows the same without parallel sending.
2. kill -9: TRIALS times (default 20) the worker is started and killed with SIGKILL at a random
   moment while it sends; a final worker finishes the outbox. Prints how many notifications
   were lost (never arrived) and how many arrived twice, and whether every repeat carried the
   same idempotency key.

    .venv/bin/python bench/notify.py [N_ALERTS] [TRIALS] [PROVIDER_DELAY]
"""

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["LIANXIN_HOME"] = tempfile.mkdtemp(prefix="lianxin-bench-notify-")
os.environ["DJANGO_SETTINGS_MODULE"] = "lianxin.web.settings"
os.environ.pop("DATABASE_URL", None)
LIANXIN = str(ROOT / ".venv" / "bin" / "lianxin")


def start_worker(env) -> subprocess.Popen:
    proc = subprocess.Popen(
        [LIANXIN, "notify-worker", "--every", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    proc.stdout.readline()  # "notify worker running": Django is up
    return proc


def latency(n: int, env, delay: float = 0.0) -> None:
    from tests.notify.receivers import HTTPReceiver

    from lianxin.alerts.models import Alert
    from lianxin.alerts.service import apply_findings
    from lianxin.care.models import CareRecipient
    from lianxin.engine.findings import Finding
    from lianxin.notify.models import Channel

    # Fresh homes each run (an open alert would only be updated).
    busy = Alert.objects.values_list("household_id", flat=True)
    people = CareRecipient.objects.exclude(household_id__in=busy).select_related("household")
    homes = [p.household for p in people[:n]]
    with HTTPReceiver(delay=delay) as r:
        Channel.objects.create(name="bench", kind="webhook", url=r.url, secret="bench")
        worker = start_worker(env)
        now = datetime.now(UTC)
        findings = [
            Finding(kind="no_power", severity="critical", started_at=now - timedelta(minutes=20),
                    detected_at=now, reason_en="bench", reason_zh="测试", household_id=h.code)
            for h in homes
        ]  # fmt: skip
        t0 = time.time()
        alerts = apply_findings(findings)
        applied = time.time() - t0
        deadline = time.time() + 120
        while time.time() < deadline and len({g.json["link"] for g in r.got}) < len(alerts):
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)
        Channel.objects.filter(name="bench").update(enabled=False)
    firsts: dict[str, float] = {}
    for g in r.got:
        firsts.setdefault(g.json["link"], g.at)
    lat = sorted(at - t0 for at in firsts.values())
    print(
        f"latency (receiver answers in {delay:g} s, {env.get('LIANXIN_NOTIFY_SENDERS', 8)} "
        f"senders): {len(alerts)} alerts opened at once (apply_findings {applied:.2f} s); "
        f"{len(lat)} reached the receiver; finding -> first notification: "
        f"median {median(lat):.2f} s, p90 {lat[int(0.9 * (len(lat) - 1))]:.2f} s, "
        f"worst {lat[-1]:.2f} s"
    )


def kill_trials(trials: int, per_trial: int, env) -> None:
    from tests.notify.receivers import HTTPReceiver

    from lianxin.notify.models import Channel, Notification
    from lianxin.notify.service import enqueue_system

    rng = random.Random(13)
    # A slow receiver widens the window between claim and the recorded send.
    with HTTPReceiver(delay=0.05) as r:
        Channel.objects.create(name="kill", kind="webhook", url=r.url, secret="k")
        killed_with_claims = 0
        for t in range(trials):
            for i in range(per_trial):
                enqueue_system(f"kill-{t}-{i}", "warning", f"k {t}-{i}", f"k {t}-{i}")
            worker = start_worker(env)
            time.sleep(rng.uniform(0.05, 0.6))
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
            killed_with_claims += Notification.objects.filter(status="sending").exists()
        # Leases lapse; a last worker finishes the outbox.
        time.sleep(float(env["LIANXIN_NOTIFY_LEASE_SECONDS"]) + 0.2)
        worker = start_worker(env)
        deadline = time.time() + 120
        while time.time() < deadline and Notification.objects.exclude(status="sent").exists():
            time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)
    keys = defaultdict(set)
    count = defaultdict(int)
    for g in r.got:
        keys[g.json["text"]].add(g.headers["Idempotency-Key"])
        count[g.json["text"]] += 1
    rows = {n.text: n.key for n in Notification.objects.filter(system_key__startswith="kill-")}
    lost = [t for t in rows if t not in count]
    twice = [t for t in rows if count.get(t, 0) > 1]
    other_key = [t for t in rows if keys.get(t, {rows[t]}) != {rows[t]}]
    print(
        f"kill -9: {trials} trials x {per_trial} notifications; killed holding a claim in "
        f"{killed_with_claims} trials; lost {len(lost)}; arrived twice {len(twice)} (all with "
        f"the same idempotency key: {not other_key}); sent twice with another key "
        f"{len(other_key)}"
    )


def main(n: int, trials: int, delay: float) -> None:
    from lianxin.web.setup import migrate, setup_django

    setup_django()
    migrate()
    from lianxin.care.seed import seed_demo_town

    seed_demo_town(households=max(600, n * (12 if delay else 6)))  # fresh homes per run
    env = dict(os.environ, LIANXIN_NOTIFY_LEASE_SECONDS="1")
    latency(n, env)
    if delay:
        latency(n, env, delay)
    kill_trials(trials, 10, env)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]] + [float(a) for a in sys.argv[3:4]]
    main(*(args + [100, 20, 0.3][len(args) :]))
