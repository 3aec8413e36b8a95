"""`lianxin ingest mqtt` against a real Mosquitto: readings and events in, bad messages kept and
acked, and nothing lost or doubled when the subscriber is killed or the broker restarts."""

import getpass
import json
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from lianxin.store import EventsStore, ReadingsStore
from tests.ingest.test_api_server import Site
from tests.services import free_port, require_program, subprocess_db_rows

pytestmark = pytest.mark.broker

START = datetime(2025, 11, 1, tzinfo=UTC)
STATS = re.compile(
    r"(?P<messages>\d+) message\(s\): (?P<readings>\d+) reading\(s\) and (?P<events>\d+) "
    r"event\(s\) stored, (?P<duplicate>\d+) duplicate"
)
PER_MESSAGE = 5
BATCH_MESSAGES = 500  # the subscriber's default batch (lianxin.ingest.mqtt.Subscriber)
PUBLISHER_WINDOW = 200  # the gateway's unacknowledged publishes, resent after a reconnect


class Broker:
    """A mosquitto of our own on a free port, persisting its sessions in a temp folder."""

    def __init__(self, folder: Path):
        self.program = require_program("mosquitto")
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            # Hold everything for a subscriber that is down, as production must.
            "max_queued_messages 0\n"
            # Run as ourselves: as root, mosquitto would switch to its own user and could not
            # write its session file into our temp folder.
            f"user {getpass.getuser()}\n"
        )
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.program, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for(lambda: _port_open(self.port), 10, "mosquitto did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # mosquitto saves its sessions on SIGTERM
            self.proc.wait(timeout=10)


class Subscriber:
    """A `lianxin ingest mqtt` process, its stderr collected line by line."""

    def __init__(self, site: Site, broker: Broker):
        self.site, self.broker = site, broker
        self.lines: list[str] = []
        self.proc = None

    def start(self):
        self.lines = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lianxin", "ingest", "mqtt", "--port", str(self.broker.port)]
            + ["--topic", "lianxin/+/readings", "--topic", "lianxin/+/events"]
            + ["--client-id", "lianxin-test", "--stats-every", "0.5", "--flush-ms", "50"],
            env=self.site.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        _wait_for(lambda: self.saw("subscribed to"), 60, f"no subscription: {self.lines}")

    def _read(self, proc):
        for line in proc.stderr:
            self.lines.append(line.rstrip())

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=30)
        return self.proc.returncode

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def counts(self) -> dict[str, int]:
        """The subscriber's own count of what the store did with its writes (the last stats
        line): readings stored (new or corrected) and rows the store found already there."""
        for line in reversed(self.lines):
            m = STATS.search(line)
            if m:
                return {k: int(v) for k, v in m.groupdict().items()}
        raise AssertionError(f"no statistics printed: {self.lines[-5:]}")


class Publisher:
    """A meter gateway: QoS 1, resending whatever the broker did not acknowledge."""

    def __init__(self, broker: Broker):
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="meter-gateway", protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(PUBLISHER_WINDOW)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)
        self.client.on_publish = self._on_publish
        self.client.connect_async("127.0.0.1", broker.port)
        self.client.loop_start()
        self.sent: list[int] = []
        self.acked: set[int] = set()
        _wait_for(self.client.is_connected, 10, "publisher could not connect")

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self.acked.add(mid)

    def publish(self, payload, topic="lianxin/hes-1/readings"):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        # Like a gateway, hold new messages while the broker is away; paho resends the ones
        # already sent but not acknowledged when it reconnects.
        _wait_for(self.client.is_connected, 30, "publisher lost the broker")
        self.sent.append(self.client.publish(topic, data, qos=1).mid)

    def wait_all_acked(self, timeout: float):
        _wait_for(lambda: set(self.sent) <= self.acked, timeout, "publishes not acked")

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def site(tmp_path):
    return Site(tmp_path / "home", meters=50)


@pytest.fixture
def subscriber(site, broker):
    s = Subscriber(site, broker)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def publisher(broker):
    p = Publisher(broker)
    yield p
    p.close()


def message(site: Site, number: int) -> tuple[dict, set]:
    """PER_MESSAGE readings, distinct for each message number."""
    readings, keys = [], set()
    for k in range(PER_MESSAGE):
        i = number * PER_MESSAGE + k
        meter = site.meters[i % len(site.meters)]
        ts = START + timedelta(minutes=15 * (i // len(site.meters)))
        readings.append({"meter": meter, "ts": ts.isoformat(), "value": 0.1 + k})
        keys.add((meter, ts))
    return {"unit": "kWh", "readings": readings}, keys


def stored(site: Site) -> list:
    df = ReadingsStore(site.home / "readings").read(all_versions=True)
    return list(zip(df["meter"].to_list(), df["ts"].to_list(), strict=True))


def rejections(site: Site) -> list[tuple]:
    return subprocess_db_rows(
        site.env,
        site.home,
        "SELECT run.source, r.line, r.field, r.value, r.code, r.reason "
        "FROM ingest_rejection r JOIN ingest_importrun run ON run.id = r.run_id "
        "ORDER BY r.id",
    )


def test_readings_events_and_bad_messages(site, broker, subscriber, publisher):
    good, keys = message(site, 0)
    publisher.publish(good)
    one = {"meter": site.meters[7], "ts": "2025-11-27 08:15", "value": 0.3, "unit": "kWh"}
    publisher.publish(one)
    publisher.publish(
        {
            "meter": site.meters[1],
            "ts": "2025-11-27T08:16:03+08:00",
            "event": "power_off",
            "detail": {"voltage": 0},
        },
        topic="lianxin/hes-1/events",
    )
    publisher.publish(b"\x00\x01 not json at all")
    publisher.publish(
        {"readings": [{"meter": "9999", "ts": "2025-11-27T00:15:00Z", "value": 1.0, "unit": "kWh"}]}
    )
    publisher.wait_all_acked(10)
    local_0815 = datetime(2025, 11, 27, 0, 15, tzinfo=UTC)
    _wait_for(lambda: len(stored(site)) == len(keys) + 1, 30, f"not stored: {subscriber.lines}")
    assert set(stored(site)) == keys | {(site.meters[7], local_0815)}
    events_store = EventsStore(site.home / "events")
    _wait_for(lambda: events_store.read().height, 10, f"no event: {rejections(site)}")
    events = events_store.read()
    assert events.select("meter", "event", "detail").rows() == [
        (site.meters[1], "power_off", '{"voltage": 0}')
    ]
    _wait_for(lambda: len(rejections(site)) == 2, 10, f"{rejections(site)} {subscriber.lines}")
    bad_json, unknown = rejections(site)
    assert bad_json[0] == "mqtt lianxin/hes-1/readings"
    assert bad_json[2:5] == ("payload", "\\x00\x01 not json at all", "unreadable")
    assert "not valid JSON" in bad_json[5]
    assert unknown[1:5] == (0, "meter", "9999", "unknown_meter")

    # SIGTERM stops cleanly; everything, the bad messages included, was acked: a restart gets
    # nothing again.
    assert subscriber.stop() == 0
    assert subscriber.saw("stopped")
    # Exactly once, counted where it happens: every reading written once, none twice.
    assert subscriber.counts() == {
        "messages": 5,
        "readings": len(keys) + 1,
        "events": 1,
        "duplicate": 0,
    }
    subscriber.start()
    time.sleep(1.5)
    assert len(rejections(site)) == 2
    assert len(stored(site)) == len(keys) + 1


@pytest.mark.slow
def test_kill_9_mid_stream_stores_every_message_exactly_once(site, broker, subscriber, publisher):
    expected = set()
    total = 3000

    def publish_all():
        for number in range(total):
            body, keys = message(site, number)
            expected.update(keys)
            publisher.publish(body)
            if number % 100 == 0:
                time.sleep(0.05)  # a stream, not one burst

    sender = threading.Thread(target=publish_all)
    sender.start()
    _wait_for(lambda: len(stored(site)) >= 1000, 60, f"nothing stored: {subscriber.lines}")
    subscriber.kill()
    sender.join()
    publisher.wait_all_acked(30)  # the broker holds them for the dead subscriber's session
    before = len(stored(site))
    assert before < total * PER_MESSAGE
    subscriber.start()
    assert subscriber.saw("resumed session")
    _wait_stored(site, total * PER_MESSAGE, subscriber)
    time.sleep(0.5)  # anything redelivered late would show up as a second copy
    keys = stored(site)
    assert len(keys) == len(set(keys)) == total * PER_MESSAGE
    assert set(keys) == expected
    # Counted where the writes happen: the restarted subscriber stored exactly what was missing
    # (no correction, no second version), and the store found already there at most the one
    # batch the killed subscriber had written but not yet acknowledged.
    assert subscriber.stop() == 0
    counts = subscriber.counts()
    assert counts["readings"] == total * PER_MESSAGE - before
    assert counts["duplicate"] <= BATCH_MESSAGES * PER_MESSAGE
    assert counts["messages"] * PER_MESSAGE == counts["readings"] + counts["duplicate"]


@pytest.mark.slow
def test_broker_restart_mid_stream_loses_nothing(site, broker, subscriber, publisher):
    expected = set()
    total, before_restart = 1500, 750
    restarted = threading.Event()

    def publish_all():
        for number in range(total):
            if number == before_restart:
                restarted.wait(60)
            body, keys = message(site, number)
            expected.update(keys)
            publisher.publish(body)
            if number % 50 == 0:
                time.sleep(0.05)

    sender = threading.Thread(target=publish_all)
    sender.start()
    _wait_for(lambda: len(stored(site)) >= 500, 60, f"nothing stored: {subscriber.lines}")
    broker.stop()
    time.sleep(1.0)
    broker.start()
    restarted.set()
    sender.join()
    _wait_for(lambda: subscriber.saw("disconnected from the broker"), 10, "no disconnect seen")
    _wait_stored(site, total * PER_MESSAGE, subscriber)
    assert set(stored(site)) >= expected
    keys = stored(site)
    assert len(keys) == len(set(keys)) == total * PER_MESSAGE
    assert subscriber.proc.poll() is None  # it rode out the restart
    assert subscriber.saw("resumed session")
    # One subscriber throughout: it wrote every reading once. What came twice is only what was
    # in flight at the restart: messages delivered before it whose acknowledgement the restart
    # cut off (how many depends on how far the subscriber had got) and the gateway's
    # unacknowledged publishes, resent. Nothing published after the restart comes twice.
    assert subscriber.stop() == 0
    counts = subscriber.counts()
    assert counts["readings"] == total * PER_MESSAGE
    assert counts["duplicate"] <= (before_restart + PUBLISHER_WINDOW) * PER_MESSAGE


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_stored(site: Site, target: int, subscriber: Subscriber, stall: float = 10.0):
    """Until `target` readings are stored; fails as soon as nothing new has been stored for
    `stall` seconds (a lost message never comes: no need to wait out a long timeout)."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        n = len(stored(site))
        if n >= target:
            return
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since > stall:
            break
        time.sleep(0.1)
    raise AssertionError(f"{target - last} reading(s) never stored: {subscriber.lines[-3:]}")


def _wait_for(condition, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(message)
