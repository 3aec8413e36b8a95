"""The MQTT subscriber when the store cannot take a write: it keeps the messages unacknowledged and
retries with backoff, stores them once the store is back, and a subscriber killed while retrying
loses nothing (the broker still holds every message it never acknowledged).

The fault is real: the day's partition folder of the readings store is taken by a plain file, so
the write fails in the store exactly as it would on a broken disk, and removing the file heals it.
"""

from datetime import UTC, datetime, timedelta

import pytest

from tests.ingest.test_api_server import Site
from tests.ingest.test_mqtt import (
    PER_MESSAGE,
    Broker,
    Publisher,
    Subscriber,
    _wait_for,
    _wait_stored,
    stored,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def messages(site: Site, day: datetime, count: int) -> list[dict]:
    out = []
    for n in range(count):
        ts = day + timedelta(minutes=15 * n)
        readings = [
            {"meter": site.meters[k], "ts": ts.isoformat(), "value": 0.5 + k}
            for k in range(PER_MESSAGE)
        ]
        out.append({"unit": "kWh", "readings": readings})
    return out


def block(site: Site, day: datetime):
    folder = site.home / "readings"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"day={day.date().isoformat()}"
    path.write_text("not a folder\n")
    return path


def test_failed_writes_are_retried_unacked_and_survive_a_kill(tmp_path):
    site = Site(tmp_path / "home", meters=50)
    broker = Broker(tmp_path / "broker")
    broker.start()
    subscriber = Subscriber(site, broker)
    publisher = None
    try:
        day1 = datetime(2025, 11, 1, tzinfo=UTC)
        day2 = datetime(2025, 11, 5, tzinfo=UTC)
        blocked = block(site, day1)
        subscriber.start()
        publisher = Publisher(broker)
        for body in messages(site, day1, 20):
            publisher.publish(body)
        _wait_for(lambda: subscriber.saw("could not store"), 30, f"no retry: {subscriber.lines}")
        assert stored(site) == []
        # The store heals: the retry stores everything, without a restart.
        blocked.unlink()
        _wait_stored(site, 20 * PER_MESSAGE, subscriber, stall=40)

        # Broken again; the subscriber dies while retrying; the store heals; a new subscriber
        # gets every message the dead one never acknowledged.
        blocked = block(site, day2)
        retries = sum("could not store" in line for line in subscriber.lines)
        for body in messages(site, day2, 20):
            publisher.publish(body)
        publisher.wait_all_acked(10)
        _wait_for(
            lambda: sum("could not store" in line for line in subscriber.lines) > retries,
            30,
            f"no second retry: {subscriber.lines[-3:]}",
        )
        subscriber.kill()
        blocked.unlink()
        subscriber.start()
        _wait_stored(site, 40 * PER_MESSAGE, subscriber)
        keys = stored(site)
        assert len(keys) == len(set(keys)) == 40 * PER_MESSAGE
    finally:
        if publisher:
            publisher.close()
        subscriber.stop()
        broker.stop()
