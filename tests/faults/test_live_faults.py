"""Faults against the real processes: poison MQTT messages on a real broker are quarantined and
acked (a restart gets none again) while good ones flow; a SQLite database locked longer than
its timeout gives the push API's documented JSON 503, and the service goes on once it is free."""

import sqlite3
import time

import pytest

from tests.ingest.test_api_server import Site, batch
from tests.ingest.test_mqtt import (  # noqa: F401 - fixtures
    _wait_for,
    broker,
    message,
    publisher,
    rejections,
    site,
    stored,
    subscriber,
)

POISON = {
    "nested": b"[" * 5000 + b"]" * 5000,
    "surrogate": b'{"meter": "\\ud800", "ts": "2025-11-01T00:00:00Z", "value": 1, "unit": "kWh"}',
    "bigint": b'{"meter": "x", "ts": "2025-11-01T00:00:00Z", "value": ' + b"9" * 400 + b"}",
    "nul": b'{"meter": "M\\u0000", "ts": "2025-11-01T00:00:00Z", "value": 1, "unit": "kWh"}',
}


@pytest.mark.broker
@pytest.mark.once
def test_poison_messages_are_quarantined_and_acked_and_never_block_the_stream(
    site,  # noqa: F811
    broker,  # noqa: F811
    subscriber,  # noqa: F811
    publisher,  # noqa: F811
):
    expected = set()
    for number, payload in enumerate(POISON.values()):
        body, keys = message(site, number)
        expected |= keys
        publisher.publish(payload)
        publisher.publish(body)
    publisher.wait_all_acked(20)
    _wait_for(lambda: set(stored(site)) == expected, 60, f"stuck: {subscriber.lines[-5:]}")
    _wait_for(lambda: len(rejections(site)) >= len(POISON), 20, f"{rejections(site)}")
    kept = rejections(site)
    # Each named by its reason (the 400-digit one also lacks a unit and names no known meter).
    assert {"unreadable", "bad_text", "not_a_number"} <= {r[4] for r in kept}
    assert not any("could not store" in line for line in subscriber.lines)
    # All acked: a restart is sent nothing again.
    assert subscriber.stop() == 0
    subscriber.start()
    time.sleep(1.5)
    assert len(rejections(site)) == len(kept)
    assert len(stored(site)) == len(expected)


@pytest.mark.once
def test_a_locked_database_gives_a_json_503_and_the_push_api_recovers(tmp_path):
    live = Site(tmp_path / "home", meters=5)
    live.env["LIANXIN_SQLITE_TIMEOUT"] = "1"
    live.start(threads=2)
    try:
        body, keys = batch(live, 0, per_meter=2)
        blocker = sqlite3.connect(live.home / "lianxin.sqlite3", timeout=5)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            status, headers, answer = live.push(body, key="locked-1")
        finally:
            blocker.rollback()
            blocker.close()
        assert status == 503, answer
        assert headers["Content-Type"] == "application/json"
        assert "Send it again" in answer["error"] and str(live.home) not in answer["error"]
        status, _headers, answer = live.push(body, key="locked-1")
        assert status == 200 and answer["accepted"] == len(keys)
    finally:
        live.stop()
