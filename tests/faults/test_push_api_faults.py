"""The push API under bad input and bad luck: poison bodies, a locked database, a day that
cannot be written and an oversized batch all get a JSON answer (4xx or the documented 503),
never an HTML 500, and a 503 means nothing was stored."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from lianxin.care.models import Household, Meter
from lianxin.ingest.api import views
from lianxin.ingest.api.intake import Intake
from lianxin.ingest.api.models import ApiToken
from lianxin.ingest.api.rows import MAX_ROWS
from lianxin.ingest.models import Rejection

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/readings"
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def intake(tmp_path, monkeypatch):
    fresh = Intake(tmp_path)
    monkeypatch.setattr(views, "_intake", fresh)
    return fresh


@pytest.fixture
def token():
    home = Household.objects.create(code="H1", address="东坡区三苏路1号")
    Meter.objects.create(number="M1", account_number="A1", household=home)
    return ApiToken.issue("hes")[1]


def push(client, token, body: bytes, content_type="application/json", key=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if key:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.generic("POST", URL, body, content_type=content_type, **headers)


def reading(meter='"M1"', value="1.5", ts=None):
    ts = ts or TODAY.isoformat()
    return f'{{"meter": {meter}, "ts": "{ts}", "value": {value}, "unit": "kWh"}}'.encode()


POISON = {
    "nested 5,000 deep": b"[" * 5000 + b"]" * 5000,
    "lone surrogate in meter": reading(meter='"\\ud800"'),
    "400-digit integer": reading(value="9" * 400),
    "NUL in meter": reading(meter='"M\\u0000"'),
    "lone surrogate in detail": json.dumps(
        {"meter": "M1", "ts": TODAY.isoformat(), "event": "power_off", "detail": "x"}
    )
    .replace('"x"', '"\\udfff"')
    .encode(),
}


@pytest.mark.parametrize("name", list(POISON))
def test_poison_bodies_get_a_json_4xx_and_the_row_is_quarantined(client, intake, token, name):
    response = push(client, token, POISON[name])
    assert response["Content-Type"] == "application/json"
    assert response.status_code in (400, 422), response.content
    answer = response.json()
    if response.status_code == 422:
        # Rejected row by row: kept in the quarantine with a readable value and reason.
        assert answer["rejected"] == 1
        assert answer["errors"][0]["code"] in ("bad_text", "not_a_number")
        kept = Rejection.objects.get()
        assert kept.code == answer["errors"][0]["code"]
        assert "\x00" not in kept.value
    else:
        assert "nested too deeply" in answer["error"]
    assert intake.stores.readings.read().is_empty()


def test_a_good_row_beside_a_poison_row_is_stored(client, intake, token):
    body = b"[" + reading() + b"," + reading(meter='"\\ud800"') + b"]"
    response = push(client, token, body)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1
    assert intake.stores.readings.read()["meter"].to_list() == ["M1"]


def test_too_many_rows_is_refused_before_it_costs_memory(client, intake, token):
    body = b"[" + b",".join([reading()] * (MAX_ROWS + 1)) + b"]"
    response = push(client, token, body)
    assert response.status_code == 413
    assert response.json()["max_rows"] == MAX_ROWS
    csv = b"meter,ts,value,unit\n" + b"M1,2026-01-01T00:00:00Z,1,kWh\n" * (MAX_ROWS + 1)
    assert push(client, token, csv, content_type="text/csv").status_code == 413


def test_a_day_that_cannot_be_written_stores_nothing_and_says_so(client, intake, token):
    day1, day2 = TODAY - timedelta(days=2), TODAY - timedelta(days=1)
    assert push(client, token, reading(ts=day1.isoformat())).status_code == 200
    # Day 2's folder cannot be made (a file stands in its way: the effect of a read-only or
    # failing disk, for root too): a batch of both days must store neither.
    (intake.home / "readings" / f"day={day2.date().isoformat()}").write_text("in the way")
    body = b"[" + reading(value="2.5", ts=day1.isoformat()) + b","
    body += reading(ts=day2.isoformat()) + b"]"
    response = push(client, token, body, key="two-days")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    answer = response.json()
    assert "nothing of it was stored" in answer["error"]
    assert str(intake.home) not in answer["error"]
    assert "Errno" not in answer["error"] and "day=" not in answer["error"]
    assert response["Retry-After"]
    assert intake.stores.readings.read()["value"].to_list() == [1.5]
    assert not list((intake.home / "readings").glob("day=*/.*.tmp"))
