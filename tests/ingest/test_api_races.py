"""Races on the push API, against a real `lianxin serve` with several threads: the same batch sent
at once on many connections with one Idempotency-Key is written once, and every sender gets the
same answer, all but one marked as replayed."""

import json
import threading
from datetime import timedelta

import pytest

from tests.ingest.test_api_server import START, Site

SENDERS = 8


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path / "home", meters=200)
    yield s
    s.stop()


def test_concurrent_posts_with_one_key_write_once_and_answer_alike(site):
    site.start(threads=SENDERS)
    readings = [
        {"meter": m, "ts": (START + timedelta(minutes=15 * i)).isoformat(), "value": 0.25}
        for m in site.meters
        for i in range(40)
    ]  # 8,000 readings: long enough to parse that the senders overlap
    body = json.dumps({"unit": "kWh", "readings": readings}).encode()
    answers: list = [None] * SENDERS
    go = threading.Barrier(SENDERS)

    def send(i):
        go.wait()
        answers[i] = site.push(body, "same-batch")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(a is not None for a in answers)
    statuses = [status for status, _h, _a in answers]
    assert statuses == [200] * SENDERS
    # One write: the first answer took every reading as new, nothing as a duplicate, and every
    # other sender got that very answer back, marked as a replay.
    bodies = [a for _s, _h, a in answers]
    assert all(b == bodies[0] for b in bodies), bodies
    assert bodies[0]["accepted"] == len(readings) and bodies[0]["duplicate"] == 0
    replayed = [h.get("Idempotent-Replayed") for _s, h, _a in answers]
    assert sorted(replayed, key=str) == [None] + ["true"] * (SENDERS - 1), replayed
    # The store's own count: one file of new readings for the day(s), every key once.
    from lianxin.store import ReadingsStore

    df = ReadingsStore(site.home / "readings").read(all_versions=True)
    assert df.height == len(readings)
