"""Reading → alert on screen: a power-cut reading pushed over HTTP and over MQTT, until its
`no_power` alert is in the duty room's `queue.json`, with 10,000 homes monitored.

    .venv/bin/python bench/alert_latency.py [--homes 10000] [--trials 20] [--settle 0.5]
                                            [--database-url postgres://…]

Real processes on one data directory: `lianxin serve` (the push API and the queue), mosquitto
with `lianxin ingest mqtt`, and `lianxin monitor --lateness 0` (it wakes on the store's
doorbell). Set-up (not timed): N homes in transformer areas of 200, one enrolled resident with
consent in each of 2 × trials areas (one trial home per area, so no trial can look like a grid
outage of its area), and the engine warmed up on a week of generated half-hourly history ending
now, saved as the monitor's checkpoint. Each trial: one meter's reading of 0 kWh for the 30
minutes ending now (a meter whose supply was cut), pushed once; then GET /alerts/queue.json
(signed in as a duty operator) every 0.1 s until the row of that home's no_power alert is
there. Prints the median and p90 per transport, and the machine. Asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from monitor_scale import TZ, machine  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    sys.exit(f"bench: {what}")


def prepare(home: Path, homes: int, enrolled: list[int]) -> tuple[str, str]:
    """The database, the warmed-up engine; returns (API token, operator's session cookie)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    from lianxin.care.models import CareRecipient, Consent, Household, Meter, TransformerArea
    from lianxin.ingest.api.models import ApiToken
    from lianxin.monitor import Monitor

    areas = TransformerArea.objects.bulk_create(
        [TransformerArea(code=f"TA{a:04d}", name=f"台区{a}") for a in range(-(-homes // 200))]
    )
    areas = list(TransformerArea.objects.order_by("code"))
    Household.objects.bulk_create(
        [
            Household(code=f"H{i:07d}", address=f"测试路{i}号", transformer_area=areas[i // 200])
            for i in range(homes)
        ],
        batch_size=5000,
    )
    ids = dict(Household.objects.values_list("code", "pk"))
    Meter.objects.bulk_create(
        [
            Meter(
                number=f"M{i:07d}",
                account_number=f"A{i:07d}",
                household_id=ids[f"H{i:07d}"],
                interval_minutes=30,
            )
            for i in range(homes)
        ],
        batch_size=5000,
    )
    for i in enrolled:
        person = CareRecipient.objects.create(
            name=f"老人{i}", birth_year=1940, household_id=ids[f"H{i:07d}"]
        )
        Consent.objects.create(
            care_recipient=person,
            scope="monitoring",
            given_at=datetime(2025, 1, 1, tzinfo=UTC),
            given_by="本人",
        )
    token = ApiToken.issue("alert-latency bench")[1]
    user = get_user_model().objects.create_user("bench-operator", password="x-unused-x")
    user.groups.add(Group.objects.get(name="duty_operator"))
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"].value

    # A week of generated routines ending at the last half hour, as a running monitor has.
    from engine import learn_data  # bench/engine.py

    tz = ZoneInfo(TZ)
    now = int(time.time()) // 1800 * 1800
    midnight = datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0) - timedelta(
        days=7
    )
    start = int(midnight.timestamp())
    _, kw = learn_data(homes, 2)
    monitor = Monitor(home, TZ)
    monitor.sync_registry()
    monitor.engine.learn(np.ascontiguousarray(kw[:, : (now - start) // 1800]), start)
    monitor._checkpoint_now()
    monitor.close()
    return token, cookie


class Proc:
    def __init__(self, args, env, name):
        self.name = name
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def saw(self, text):
        return any(text in line for line in self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def request(port, method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--homes", type=int, default=10_000)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--settle", type=float, default=0.5, help="the monitor's --settle")
    p.add_argument("--database-url", default=None)
    args = p.parse_args()
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    home = Path(tempfile.mkdtemp(prefix="alert-latency-"))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["LIANXIN_HOME"] = str(home)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    os.environ.update(env)
    os.environ.pop("DATABASE_URL", None) if not args.database_url else None
    from lianxin.web.setup import migrate, setup_django

    setup_django()
    migrate()
    per_area = 200
    enrolled = [a * per_area + 7 for a in range(2 * args.trials)]
    if enrolled[-1] >= args.homes:
        sys.exit(f"bench: {args.homes} homes hold fewer than {2 * args.trials} areas")
    t0 = time.perf_counter()
    token, cookie = prepare(home, args.homes, enrolled)
    print(f"machine: {machine()}")
    print(f"set-up: {args.homes:,} homes, engine warmed up, in {time.perf_counter() - t0:.0f} s")

    port, mport = free_port(), free_port()
    (home / "broker").mkdir()
    conf = home / "broker" / "mosquitto.conf"
    conf.write_text(
        f"listener {mport} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {home / 'broker'}/\nmax_queued_messages 0\n"
        f"user {os.environ.get('USER') or 'root'}\n"
    )
    lx = [sys.executable, "-m", "lianxin"]
    procs = []
    try:
        broker = Proc([mosquitto, "-c", str(conf)], env, "mosquitto")
        procs.append(broker)
        serve = Proc([*lx, "serve", "--port", str(port), "--threads", "4"], env, "serve")
        procs.append(serve)
        sub = Proc(
            [*lx, "ingest", "mqtt", "--port", str(mport), "--topic", "lianxin/+/readings"]
            + ["--client-id", "bench-sub", "--flush-ms", "50"],
            env,
            "ingest mqtt",
        )
        procs.append(sub)
        monitor = Proc(
            [*lx, "monitor", "--lateness", "0", "--every", "60", "--settle", str(args.settle)],
            env,
            "monitor",
        )
        procs.append(monitor)
        wait_for(lambda: monitor.saw("judged to"), 300, f"monitor did not step: {monitor.lines}")
        wait_for(lambda: sub.saw("subscribed to"), 60, f"no subscription: {sub.lines}")

        def healthy():
            try:
                return request(port, "GET", "/healthz")[0] in (200, 503)
            except OSError:
                return False

        wait_for(healthy, 60, f"serve did not start: {serve.lines}")
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw", protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", mport)
        pub.loop_start()
        wait_for(pub.is_connected, 10, "publisher could not connect")

        def on_screen(address: str) -> bool:
            status, body = request(
                port, "GET", "/alerts/queue.json", headers={"Cookie": f"sessionid={cookie}"}
            )
            return status == 200 and address in json.loads(body)["html"]

        results: dict[str, list[float]] = {"HTTP": [], "MQTT": []}
        misses: dict[str, int] = {"HTTP": 0, "MQTT": 0}
        homes = iter(enrolled)
        for transport in ("HTTP", "MQTT"):
            for _ in range(args.trials):
                i = next(homes)
                end = int(time.time())
                body = json.dumps(
                    {
                        "unit": "kWh",
                        "readings": [
                            {
                                "meter": f"M{i:07d}",
                                "ts": datetime.fromtimestamp(end - 1800, UTC).isoformat(),
                                "value": 0.0,
                            }
                        ],
                    }
                ).encode()
                t0 = time.monotonic()
                if transport == "HTTP":
                    status, answer = request(
                        port,
                        "POST",
                        "/api/v1/readings",
                        body,
                        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                    )
                    if status >= 300:
                        sys.exit(f"bench: push refused {status} {answer[:300]!r}")
                else:
                    pub.publish("lianxin/gw-1/readings", body, qos=1).wait_for_publish(10)
                address = f"测试路{i}号"
                deadline = t0 + 60
                while time.monotonic() < deadline and not on_screen(address):
                    time.sleep(0.1)
                if time.monotonic() >= deadline:
                    misses[transport] += 1
                else:
                    results[transport].append(time.monotonic() - t0)
                time.sleep(1.0)  # trials apart: each one's step is its own
        pub.loop_stop()
        for transport, values in results.items():
            if values:
                print(
                    f"{transport}: reading → no_power alert in queue.json: median "
                    f"{np.median(values):.2f} s, p90 {np.percentile(values, 90):.2f} s, "
                    f"min {min(values):.2f} s, max {max(values):.2f} s "
                    f"({len(values)} trials, {misses[transport]} not on screen within 60 s)"
                )
            else:
                print(f"{transport}: no alert reached the screen in {misses[transport]} trials")
        steps = [ln for ln in monitor.lines if "judged to" in ln]
        print(f"monitor steps: {len(steps)}; last: {steps[-1] if steps else '-'}")
    finally:
        for proc in reversed(procs):
            proc.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
