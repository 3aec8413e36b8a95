"""Payments and prepaid balances over the push API and MQTT: the file importer's checks, per-row
errors naming the field and value, idempotent re-sends, and nothing lost or stored twice when the
receiving process is killed (SIGKILL) between receiving a batch and answering it."""

import http.client
import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from lianxin.care.models import Household, Meter
from lianxin.ingest.api import views
from lianxin.ingest.api.intake import Intake
from lianxin.ingest.api.models import ApiToken
from lianxin.ingest.models import Rejection
from lianxin.store import PaymentsStore
from tests.ingest.test_api_server import Site
from tests.ingest.test_mqtt import Broker, Publisher, Subscriber, _wait_for

URL = "/api/v1/readings"
START = datetime(2025, 11, 1, tzinfo=UTC)


@pytest.fixture
def intake(tmp_path, monkeypatch):
    fresh = Intake(tmp_path)
    monkeypatch.setattr(views, "_intake", fresh)
    return fresh


def push(client, token, body, key=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.generic("POST", URL, json.dumps(body), content_type="application/json", **headers)


@pytest.mark.django_db
def test_payments_and_balances_checked_stored_and_idempotent(client, intake):
    home = Household.objects.create(code="H1", address="东坡区三苏路1号")
    Meter.objects.create(number="0320000001", account_number="A1", household=home, prepaid=True)
    token = ApiToken.issue("hes")[1]
    body = {
        "payments": [
            {"account": "A1", "ts": "2025-11-27T09:00:00+08:00", "amount": 50, "channel": "wechat"},
            {"meter": "0320000001", "ts": "2025-11-28 10:00", "amount": 20.5},
            {"account": "A1", "ts": "2025-11-27T09:30:00+08:00", "amount": -5},
            {"account": "NOPE", "ts": "2025-11-27T09:30:00+08:00", "amount": 5},
            {"account": "A1", "ts": "2999-01-01T00:00:00Z", "amount": 5},
            {"account": "A1", "ts": "2025-11-27T09:30:00+08:00", "amount": "5"},
        ],
        "balances": [
            {"meter": "0320000001", "ts": "2025-11-27T09:00:01+08:00", "balance": -3.2},
            {"meter": "0320000001", "ts": "2025-11-27T09:00:01+08:00", "balance": 5e7},
            {"meter": "9999", "ts": "2025-11-27T09:00:01+08:00", "balance": 1},
        ],
    }
    first = push(client, token, body, key="pay-1")
    assert first.status_code == 200, first.json()
    answer = first.json()
    assert answer["received"] == 9 and answer["rejected"] == 6
    assert answer["payments"] == {"accepted": 2, "replaced": 0, "duplicate": 0}
    assert answer["balances"] == {"accepted": 1, "replaced": 0, "duplicate": 0}
    errors = {(e["field"], e["row"]): (e["value"], e["code"]) for e in answer["errors"]}
    assert errors == {
        ("payments.amount", 2): (-5, "negative"),
        ("payments.account", 3): ("NOPE", "unknown_meter"),
        ("payments.ts", 4): ("2999-01-01T00:00:00Z", "future"),
        ("payments.amount", 5): ("5", "not_a_number"),
        ("balances.balance", 1): (5e7, "absurd"),
        ("balances.meter", 2): ("9999", "unknown_meter"),
    }
    # Kept in the quarantine like every refused row.
    assert Rejection.objects.filter(field="payments.amount").count() == 2
    pay = intake.stores.payments.read().sort("ts")
    assert pay.select("account", "amount", "channel").rows() == [
        ("A1", 50.0, "wechat"),
        ("A1", 20.5, ""),
    ]
    assert pay["ts"][1] == datetime(2025, 11, 28, 2, 0, tzinfo=UTC)  # naive = deployment time
    assert intake.stores.balances.read()["balance"].to_list() == [-3.2]
    again = push(client, token, body, key="pay-1")
    assert again["Idempotent-Replayed"] == "true" and again.json() == answer
    other = push(client, token, body, key="pay-2").json()
    assert other["payments"] == {"accepted": 0, "replaced": 0, "duplicate": 2}
    assert intake.stores.payments.read(all_versions=True).height == 2


def payments(number: int, count: int = 200) -> tuple[dict, set]:
    rows, keys = [], set()
    for k in range(count):
        ts = START + timedelta(minutes=number * count + k)
        rows.append({"account": "A", "ts": ts.isoformat(), "amount": 10 + k, "channel": "app"})
        keys.add(("A", ts, "app"))
    return {"payments": rows}, keys


def stored_payments(site: Site) -> list:
    df = PaymentsStore(site.home / "payments").read(all_versions=True)
    return list(
        zip(df["account"].to_list(), df["ts"].to_list(), df["channel"].to_list(), strict=True)
    )


@pytest.mark.slow
def test_http_payments_survive_kill_9_between_receipt_and_answer(tmp_path):
    site = Site(tmp_path / "home", meters=2)
    rng = random.Random(17)
    expected: set = set()
    try:
        for trial in range(2):
            site.start(threads=2)
            body, keys = payments(trial)
            expected |= keys
            data = json.dumps(body).encode()
            outcome: dict = {}

            def send(data=data, trial=trial, outcome=outcome):
                try:
                    outcome["answer"] = site.push(data, key=f"pay-{trial}")
                except (OSError, http.client.HTTPException) as exc:  # the kill cut the answer
                    outcome["error"] = exc

            sender = threading.Thread(target=send)
            sender.start()
            time.sleep(rng.uniform(0.0, 0.15))  # the batch is received, maybe not yet answered
            site.kill()
            sender.join(timeout=30)
            site.start(threads=2)
            status, _headers, answer = site.push(data, key=f"pay-{trial}")
            assert status == 200 and answer["rejected"] == 0, answer
            got = answer["payments"]
            # Stored before the kill (all duplicate, or replayed by key) or not at all (all new).
            assert got["replaced"] == 0 and got["accepted"] + got["duplicate"] == len(keys)
            site.stop()
        keys = stored_payments(site)
        assert len(keys) == len(set(keys)) == len(expected)  # each payment exactly once
        assert set(keys) == expected
    finally:
        site.stop()


@pytest.mark.broker
@pytest.mark.slow
def test_mqtt_payments_survive_a_killed_subscriber(tmp_path):
    site = Site(tmp_path / "home", meters=2)
    broker = Broker(tmp_path / "broker")
    broker.start()
    subscriber = Subscriber(site, broker)
    publisher = None
    try:
        subscriber.start()
        publisher = Publisher(broker)
        expected: set = set()
        for number in range(30):
            body, keys = payments(number, count=20)
            expected |= keys
            publisher.publish(body)
            if number == 10:
                _wait_for(lambda: len(stored_payments(site)) > 0, 60, f"{subscriber.lines}")
                subscriber.kill()  # mid-stream: some batches received, not acknowledged
        publisher.wait_all_acked(30)
        subscriber.start()
        _wait_for(
            lambda: len(stored_payments(site)) >= len(expected),
            90,
            f"{len(expected) - len(stored_payments(site))} payments never stored",
        )
        time.sleep(0.5)  # a late redelivery would show up as a second copy
        keys = stored_payments(site)
        assert len(keys) == len(set(keys)) == len(expected)
        assert set(keys) == expected
        assert subscriber.stop() == 0
        assert subscriber.saw("payment(s) and balance(s) stored")
    finally:
        if publisher:
            publisher.close()
        subscriber.stop()
        broker.stop()
