"""kill -9 of every long-running process at random points, 20 trials each, bounded in time:
`serve` mid-push, `watch` mid-import, the MQTT subscriber mid-stream (poison messages mixed in)
and `monitor` mid-step. Asserted after all trials: no acknowledged reading lost, nothing stored
twice, no alert lost or doubled, and the service picks up where it was killed.

Each test prints its figures (trials, acknowledged, stored, lost, doubled): run with -s."""

import http.client
import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from lianxin.store import ReadingsStore, open_stores
from tests.ingest.test_api_server import Site, batch
from tests.ingest.test_mqtt import Broker, Publisher, Subscriber, _wait_for, message

TRIALS = 20
pytestmark = [pytest.mark.once, pytest.mark.slow]


def keys_and_copies(home: Path) -> tuple[set, int]:
    df = ReadingsStore(home / "readings").read(all_versions=True)
    keys = list(zip(df["meter"].to_list(), df["ts"].to_list(), strict=True))
    return set(keys), len(keys)


def spawn(site: Site, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lianxin", *args],
        env=site.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill9(proc: subprocess.Popen):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_serve_killed_20_times_mid_push_loses_no_acknowledged_reading(tmp_path):
    rnd = random.Random(11)
    site = Site(tmp_path / "home", meters=20)
    acknowledged: set = set()
    every: set = set()
    pending: dict[str, bytes] = {}  # sent, not answered: the client sends it again
    number = 0
    for _trial in range(TRIALS):
        site.start(threads=2)
        stop = threading.Event()

        def client(stop=stop):
            nonlocal number
            while not stop.is_set():
                if pending:
                    key, body = next(iter(pending.items()))
                    keys = None
                else:
                    body, keys = batch(site, number, per_meter=5)
                    key = f"b-{number}"
                    number += 1
                    every.update(keys)
                    pending[key] = body
                try:
                    status, _h, _answer = site.push(body, key)
                except (OSError, http.client.HTTPException):
                    return  # killed mid-request (or mid-answer): not acknowledged
                if status == 200:
                    pending.pop(key)
                    acknowledged.update(json_keys(body))

        sender = threading.Thread(target=client)
        sender.start()
        time.sleep(rnd.uniform(0.05, 0.6))
        site.kill()
        stop.set()
        sender.join(timeout=30)
        # Acknowledged means on disk, even with the server dead.
        on_disk, _copies = keys_and_copies(site.home)
        assert acknowledged <= on_disk
    site.start(threads=2)
    for key, body in list(pending.items()):
        assert site.push(body, key)[0] == 200
        acknowledged.update(json_keys(body))
    site.stop()
    on_disk, copies = keys_and_copies(site.home)
    lost = len(acknowledged - on_disk)
    print(
        f"\nserve: {TRIALS} kill -9, {number} batches, {len(acknowledged)} readings acknowledged, "
        f"{len(on_disk)} stored, lost {lost}, doubled {copies - len(on_disk)}"
    )
    assert lost == 0 and on_disk == every == acknowledged
    assert copies == len(on_disk)  # every reading stored once


def json_keys(body: bytes) -> set:
    doc = json.loads(body)
    return {(r["meter"], datetime.fromisoformat(r["ts"]).astimezone(UTC)) for r in doc["readings"]}


def test_watch_killed_20_times_mid_import_imports_every_file_once(tmp_path):
    rnd = random.Random(12)
    site = Site(tmp_path / "home", meters=10)
    drop = tmp_path / "drop"
    drop.mkdir()
    start = datetime(2025, 11, 1, tzinfo=UTC)
    expected = set()
    for f in range(60):
        lines = ["meter,ts,value,unit"]
        for k in range(20):
            ts = start + timedelta(minutes=15 * (f * 20 + k))
            meter = site.meters[k % len(site.meters)]
            lines.append(f"{meter},{ts:%Y-%m-%dT%H:%M}Z,0.5,kWh")
            expected.add((meter, ts))
        (drop / f"f{f:03d}.csv").write_text("\n".join(lines) + "\n")
    for _trial in range(TRIALS):
        proc = spawn(site, "watch", str(drop), "--interval", "0.05")
        time.sleep(rnd.uniform(0.8, 2.5))
        kill9(proc)
    assert site.lianxin("watch", str(drop), "--once").returncode == 0
    left = [p.name for p in drop.iterdir() if p.is_file()]
    done = sorted(p.name for p in (drop / "done").glob("*.csv"))
    on_disk, copies = keys_and_copies(site.home)
    print(
        f"\nwatch: {TRIALS} kill -9, 60 files, {len(done)} in done/, {len(left)} left, "
        f"{len(expected)} readings expected, {len(on_disk)} stored, "
        f"lost {len(expected - on_disk)}, doubled {copies - len(on_disk)}"
    )
    assert left == [] and done == [f"f{f:03d}.csv" for f in range(60)]
    assert not list((drop / "failed").glob("*.csv"))
    assert on_disk == expected and copies == len(on_disk)


@pytest.mark.broker
def test_mqtt_subscriber_killed_20_times_mid_stream_with_poison_messages(tmp_path):
    rnd = random.Random(13)
    site = Site(tmp_path / "home", meters=50)
    broker = Broker(tmp_path / "broker")
    broker.start()
    subscriber = Subscriber(site, broker)
    subscriber.start()
    publisher = Publisher(broker)
    expected: set = set()
    total = 1500
    poison = [
        b"[" * 5000 + b"]" * 5000,
        b'{"meter": "\\ud800", "ts": "2025-11-01T00:00:00Z", "value": 1, "unit": "kWh"}',
        b'{"meter": "x", "ts": "2025-11-01T00:00:00Z", "value": ' + b"9" * 400 + b"}",
        b'{"meter": "M\\u0000", "ts": "2025-11-01T00:00:00Z", "value": 1, "unit": "kWh"}',
    ]
    done = threading.Event()

    def publish_all():
        for number in range(total):
            body, keys = message(site, number)
            expected.update(keys)
            publisher.publish(body)
            if number % 60 == 0:
                publisher.publish(poison[(number // 60) % len(poison)])
                time.sleep(0.05)
        done.set()

    sender = threading.Thread(target=publish_all)
    sender.start()
    try:
        for _trial in range(TRIALS):
            time.sleep(rnd.uniform(0.1, 0.8))
            subscriber.kill()
            subscriber.start()
        sender.join()
        publisher.wait_all_acked(60)
        _wait_for(
            lambda: keys_and_copies(site.home)[0] >= expected,
            120,
            f"missing readings: {subscriber.lines[-3:]}",
        )
        time.sleep(1.0)  # a redelivery would show up as a second copy
        on_disk, copies = keys_and_copies(site.home)
        with sqlite3.connect(site.home / "lianxin.sqlite3") as db:
            quarantined = db.execute(
                "SELECT count(*) FROM ingest_importrun WHERE source LIKE 'mqtt%'"
            ).fetchone()[0]
        print(
            f"\nmqtt: {TRIALS} kill -9, {total} messages + {total // 60 + 1} poison, "
            f"{len(expected)} readings expected, {len(on_disk)} stored, "
            f"lost {len(expected - on_disk)}, doubled {copies - len(on_disk)}, "
            f"{quarantined} quarantine runs"
        )
        assert on_disk == expected and copies == len(on_disk)
        assert quarantined >= 1
        assert subscriber.proc.poll() is None  # never stuck on a poison message
    finally:
        subscriber.stop()
        publisher.close()
        broker.stop()


SAMPLE = Path(__file__).parents[1] / "data" / "lcl_sample.parquet"
HOMES = ["MAC000002", "MAC000003", "MAC000005", "MAC000007"]


def test_monitor_killed_20_times_mid_step_opens_each_alert_once(tmp_path):
    rnd = random.Random(14)
    site = Site(tmp_path / "home", meters=0)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    # The real curves of four homes, moved so their last 35 days end now; Mr. Du's home has no
    # power for the last two hours.
    df = pl.read_parquet(SAMPLE).filter(pl.col("household_id").is_in(HOMES))
    df = df.with_columns(ts=pl.col("ts").dt.replace_time_zone("UTC"))
    shift = now - datetime(2013, 2, 18, tzinfo=UTC)
    df = df.with_columns(ts=pl.col("ts") + shift).filter(
        (pl.col("ts") >= now - timedelta(days=35)) & (pl.col("ts") < now)
    )
    meter = pl.col("household_id").replace_strict({h: f"M{i}" for i, h in enumerate(HOMES)})
    value = pl.when((meter == "M0") & (pl.col("ts") >= now - timedelta(hours=2)))
    frame = df.select(
        meter=meter, ts="ts", value=value.then(0.0).otherwise("kwh"), unit=pl.lit("kWh")
    )
    open_stores(site.home).readings.write(frame)
    site.lianxin(
        "manage",
        "shell",
        "-c",
        "from datetime import datetime, UTC\n"
        "from lianxin.care.models import *\n"
        "area = TransformerArea.objects.create(code='TA1', name='x')\n"
        f"for i, code in enumerate({HOMES!r}):\n"
        "    h = Household.objects.create(code=code, address=code, transformer_area=area)\n"
        "    Meter.objects.create(number=f'M{i}', account_number=f'A{i}', household=h,"
        " interval_minutes=30)\n"
        f"p = CareRecipient.objects.create(name='du', birth_year=1935,"
        f" household=Household.objects.get(code={HOMES[0]!r}))\n"
        "Consent.objects.create(care_recipient=p, scope='monitoring',"
        " given_at=datetime(2024, 5, 1, tzinfo=UTC), given_by='self')\n",
    )
    args = ("monitor", "--every", "0.2", "--lateness", "0", "--history-days", "35")
    for _trial in range(TRIALS):
        proc = spawn(site, *args)
        time.sleep(rnd.uniform(0.3, 2.5))
        kill9(proc)
    assert site.lianxin(*args[:-2], "--once", "--history-days", "35").returncode == 0
    with sqlite3.connect(site.home / "lianxin.sqlite3") as db:
        alerts = db.execute(
            "SELECT h.code, a.kind FROM alerts_alert a JOIN care_household h"
            " ON h.id = a.household_id"
        ).fetchall()
        applied = db.execute(
            "SELECT count(*), count(DISTINCT finding_id || event) FROM alerts_appliedfinding"
        ).fetchone()
    print(f"\nmonitor: {TRIALS} kill -9, alerts {alerts}, applied findings {applied}")
    no_power = [a for a in alerts if a == (HOMES[0], "no_power")]
    assert len(no_power) == 1  # not lost, not doubled
    assert len(alerts) == len(set(alerts))
    assert applied[0] == applied[1]
