"""The push API against a real `lianxin serve` process: a 2xx means durable, even if the server is
killed with SIGKILL the moment after it answered."""

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lianxin.store import ReadingsStore
from tests.services import free_port, subprocess_env

START = datetime(2025, 11, 1, tzinfo=UTC)


class Site:
    """A data directory with its own database (SQLite, or PostgreSQL when the suite runs on it),
    meters and an API token, and the `lianxin serve` process that serves it."""

    def __init__(self, home: Path, meters: int):
        self.home = home
        self.env = subprocess_env(home)
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.lianxin("init")
        self.meters = [f"32{i:08d}" for i in range(meters)]
        # One process for meters and token: each Django start-up costs a second or two.
        self.token = self.lianxin(
            "manage",
            "shell",
            "-c",
            "from lianxin.care.models import Household, Meter\n"
            "from lianxin.ingest.api.models import ApiToken\n"
            "h = Household.objects.create(code='H', address='x')\n"
            f"Meter.objects.bulk_create(Meter(number=n, account_number='A', household=h) "
            f"for n in {self.meters!r})\n"
            "print(ApiToken.issue('bench')[1])",
        ).stdout.split()[-1]

    def lianxin(self, *args) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "lianxin", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result

    def start(self, threads: int = 4):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lianxin", "serve", "--port", str(self.port)]
            + ["--threads", str(threads)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"lianxin serve did not start: {self.proc.stderr.read()!r}")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def request(self, method, path, body=b"", headers=None) -> tuple[int, dict, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, dict(response.getheaders()), json.loads(data or b"{}")
        finally:
            conn.close()

    def push(self, body: bytes, key: str | None = None, content_type="application/json"):
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": content_type}
        if key:
            headers["Idempotency-Key"] = key
        return self.request("POST", "/api/v1/readings", body, headers)


def batch(site: Site, number: int, per_meter: int) -> tuple[bytes, set]:
    """Readings of every meter for `per_meter` quarter-hours, distinct for each batch number."""
    readings = []
    keys = set()
    for step in range(per_meter):
        ts = START + timedelta(minutes=15 * (number * per_meter + step))
        stamp = ts.isoformat()
        for meter in site.meters:
            readings.append({"meter": meter, "ts": stamp, "value": 0.25})
            keys.add((meter, ts))
    return json.dumps({"unit": "kWh", "readings": readings}).encode(), keys


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path / "home", meters=50)
    yield s
    s.stop()


def stored_keys(home: Path) -> list:
    df = ReadingsStore(home / "readings").read(all_versions=True)
    return list(zip(df["meter"].to_list(), df["ts"].to_list(), strict=True))


@pytest.mark.slow
def test_every_answered_batch_survives_kill_9(site):
    site.start()
    answered: dict[str, set] = {}
    unanswered: dict[str, bytes] = {}
    written = {"accepted": 0, "replaced": 0, "duplicate": 0}  # the store's counts, per answer
    all_keys: set = set()
    stop = threading.Event()
    failures: list[BaseException] = []

    def client():
        number = 0
        while not stop.is_set():
            body, keys = batch(site, number, per_meter=20)  # 1,000 readings
            key = f"batch-{number}"
            all_keys.update(keys)
            try:
                status, _headers, answer = site.push(body, key)
                assert status == 200, answer
                assert answer["accepted"] == len(keys)
                answered[key] = keys
                for k in written:
                    written[k] += answer[k]
            except OSError:
                unanswered[key] = body
                return
            except BaseException as exc:  # noqa: BLE001 - reported by the test, not the thread
                failures.append(exc)
                return
            number += 1

    sender = threading.Thread(target=client)
    sender.start()
    deadline = time.monotonic() + 30
    while len(answered) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    site.kill()  # SIGKILL mid-stream: no chance to flush anything
    stop.set()
    sender.join(timeout=30)
    assert not failures, failures
    assert len(answered) >= 5

    # Every reading of every answered batch is on disk, before the server even restarts.
    on_disk = set(stored_keys(site.home))
    for keys in answered.values():
        assert keys <= on_disk

    site.start()
    # The batch in flight when the server died is sent again with its key; answered ones too.
    for key, body in unanswered.items():
        status, _headers, answer = site.push(body, key)
        assert status == 200 and answer["rejected"] == 0
        # Written before the kill (all there: duplicates) or not at all (all new).
        assert (answer["accepted"], answer["duplicate"]) in ((1000, 0), (0, 1000)), answer
        for k in written:
            written[k] += answer[k]
    last = max(answered, key=lambda k: int(k.split("-")[1]))
    body, _keys = batch(site, int(last.split("-")[1]), per_meter=20)
    status, headers, answer = site.push(body, last)
    assert status == 200 and headers.get("Idempotent-Replayed") == "true"
    assert answer["accepted"] == 1000

    keys = stored_keys(site.home)
    assert len(keys) == len(set(keys)) == len(all_keys)  # all there, and each exactly once
    assert set(keys) == all_keys
    # Counted where the writes happen: each reading was taken as new exactly once, never as a
    # correction (a second version), and only the batch cut off by the kill came back as already
    # stored.
    assert written["accepted"] == len(all_keys) and written["replaced"] == 0
    assert written["duplicate"] in (0, 1000)


def test_a_batch_is_on_disk_when_the_answer_arrives(site):
    """Kill -9 straight after each 2xx, three times over, restarting in between."""
    site.start(threads=2)
    expected = set()
    for number in range(3):
        body, keys = batch(site, number, per_meter=4)
        status, _headers, answer = site.push(body, f"k{number}")
        site.kill()
        assert status == 200 and answer["accepted"] == len(keys)
        expected |= keys
        assert set(stored_keys(site.home)) == expected
        site.start(threads=2)
    # The token, the keys and the meters all survived too.
    status, headers, _answer = site.push(batch(site, 0, per_meter=4)[0], "k0")
    assert status == 200 and headers.get("Idempotent-Replayed") == "true"


def test_token_commands(tmp_path):
    site = Site(tmp_path / "home", meters=1)
    issued = site.lianxin("ingest", "token", "issue", "hes-2", "--note", "Meishan HES")
    token = issued.stdout.strip()
    assert token.startswith("lx_") and "\n" not in token
    assert "will not be shown again" in issued.stderr
    listed = site.lianxin("ingest", "token", "list").stdout
    assert "hes-2" in listed and "Meishan HES" in listed and "active" in listed
    assert token not in listed and site.token not in listed
    again = subprocess.run(
        [sys.executable, "-m", "lianxin", "ingest", "token", "issue", "hes-2"],
        env=site.env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 1 and "already has a token" in again.stderr

    site.start(threads=1)
    try:
        site.token = token
        status, _headers, answer = site.push(b"[]")
        assert status == 400 and "no readings" in answer["error"]  # the token was accepted
        revoked = site.lianxin("ingest", "token", "revoke", "hes-2").stdout
        assert "revoked the token of hes-2" in revoked
        status, _headers, answer = site.push(b"[]")
        assert status == 401 and "revoked" in answer["error"]
    finally:
        site.stop()
    assert "revoked" in site.lianxin("ingest", "token", "list").stdout
