"""The HTTP push API as a data source meets it: tokens, JSON and CSV batches, per-row errors,
idempotent re-sends, and clear answers to bodies that are not what they should be."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lianxin.care.models import Household, Meter
from lianxin.ingest.api import views
from lianxin.ingest.api.intake import Intake
from lianxin.ingest.api.models import ApiToken, PushedBatch
from lianxin.ingest.models import ImportRun, Rejection

pytestmark = pytest.mark.django_db

URL = "/api/v1/readings"


@pytest.fixture
def intake(tmp_path, monkeypatch):
    """A readings store of this test's own, in place of the one in LIANXIN_HOME."""
    fresh = Intake(tmp_path)
    monkeypatch.setattr(views, "_intake", fresh)
    return fresh


@pytest.fixture
def meters():
    home = Household.objects.create(code="H1", address="东坡区三苏路1号")
    Meter.objects.create(number="0320000001", account_number="A1", household=home)
    Meter.objects.create(number="0320000002", account_number="A1", household=home)
    Meter.objects.create(number="W0001", account_number="A1", household=home, kind="water")


@pytest.fixture
def token():
    return ApiToken.issue("hes-meishan")[1]


def push(client, token, body, content_type="application/json", key=None, query=""):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    data = json.dumps(body) if not isinstance(body, str | bytes) else body
    # generic(): post() would re-encode a body whose Content-Type names a charset.
    return client.generic("POST", URL + query, data, content_type=content_type, **headers)


def stored(intake: Intake) -> pl.DataFrame:
    return intake.stores.readings.read(all_versions=True).sort("meter", "ts")


def test_a_token_is_required_and_only_its_hash_is_kept(client, intake, token):
    assert token.startswith("lx_")
    row = ApiToken.objects.get(name="hes-meishan")
    assert token not in (row.token_hash, row.prefix) and token.startswith(row.prefix)

    missing = client.post(URL, data="[]", content_type="application/json")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in missing.json()["error"]
    wrong = push(client, "lx_not-a-token", [])
    assert wrong.status_code == 401 and wrong.json()["error"] == "unknown API token"

    row.revoke()
    revoked = push(client, token, [])
    assert revoked.status_code == 401
    assert "was revoked" in revoked.json()["error"]


def test_json_batch_is_stored_in_utc(client, intake, meters, token):
    body = {
        "readings": [
            {
                "meter": "0320000001",
                "ts": "2025-11-27T08:15:00+08:00",
                "value": 0.42,
                "unit": "kWh",
            },
            # No offset: local time in the deployment's zone (Asia/Shanghai).
            {"meter": "0320000001", "ts": "2025-11-27 08:30", "value": 0.5, "unit": "kWh"},
            {"meter": "W0001", "ts": "2025-11-27T00:00:00Z", "value": 0.02, "unit": "m3"},
        ]
    }
    response = push(client, token, body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["received"] == 3 and answer["accepted"] == 3 and answer["rejected"] == 0
    assert answer["errors"] == []
    df = stored(intake)
    assert df.select("meter", "ts", "value", "unit").rows() == [
        ("0320000001", datetime(2025, 11, 27, 0, 15, tzinfo=UTC), 0.42, "kWh"),
        ("0320000001", datetime(2025, 11, 27, 0, 30, tzinfo=UTC), 0.5, "kWh"),
        ("W0001", datetime(2025, 11, 27, 0, 0, tzinfo=UTC), 0.02, "m3"),
    ]
    assert df["received_at"].null_count() == 0
    assert ApiToken.objects.get().last_used_at is not None


def test_csv_batch_with_a_default_unit(client, intake, meters, token):
    body = (
        "ts,meter,value,户名\n"
        "2025-11-27T08:15:00+08:00,0320000001,0.42,杜\n"
        "2025-11-27T08:30:00+08:00,0320000001,0.38,杜\n"
    )
    response = push(client, token, body.encode(), "text/csv", query="?unit=kWh")
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 2
    assert stored(intake)["value"].to_list() == [0.42, 0.38]

    no_unit = push(client, token, body.encode(), "text/csv")
    assert no_unit.status_code == 400
    assert "lacks column(s) unit" in no_unit.json()["error"]


def test_gbk_csv_with_chinese_headers(client, intake, meters, token):
    body = "户名,表号,时间,值,单位\n杜德明,0320000001,2025-11-27 08:15,0.42,kWh\n"
    for content_type in ("text/csv", "text/csv; charset=gbk"):
        response = push(client, token, body.encode("gbk"), content_type)
        assert response.status_code == 200, response.content
    assert stored(intake).select("meter", "ts", "value").rows() == [
        ("0320000001", datetime(2025, 11, 27, 0, 15, tzinfo=UTC), 0.42)
    ]
    wrong = push(client, token, body.encode("gbk"), "text/csv; charset=utf-8")
    assert wrong.status_code == 400 and "not utf-8" in wrong.json()["error"]


def test_each_bad_row_is_named_refused_and_kept_and_the_rest_is_stored(
    client, intake, meters, token
):
    body = {
        "unit": "kWh",
        "readings": [
            {"meter": "0320000001", "ts": "2025-11-27T08:15:00+08:00", "value": 0.4},
            {"meter": "0399999999", "ts": "2025-11-27T08:15:00+08:00", "value": 0.4},
            {"meter": "0320000001", "ts": "27/11/2026 08:30", "value": 0.4},
            {"meter": "0320000001", "ts": "2025-11-27T08:45:00+08:00", "value": -1},
            {"meter": "0320000001", "ts": "2025-11-27T09:00:00+08:00", "value": "0.4"},
            {"meter": 320000001, "ts": "2025-11-27T09:00:00+08:00", "value": 0.4},
            {"meter": "W0001", "ts": "2025-11-27T09:00:00+08:00", "value": 0.4},
            {"meter": "0320000001", "ts": "2099-01-01T00:00:00+08:00", "value": 0.4},
            {"meter": "0320000001", "ts": "2025-11-27T09:15:00+08:00", "value": 99999},
            {"meter": "0320000001", "ts": "2025-11-27T09:30:00+08:00"},
        ],
        "events": [
            {"meter": "0320000002", "ts": "2025-11-27T09:41:07+08:00", "event": "power_off"},
            {"meter": "0320000002", "ts": "2025-11-27T09:50:00+08:00", "event": "explosion"},
        ],
    }
    response = push(client, token, body)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["received"], answer["accepted"], answer["rejected"]) == (12, 2, 10)
    errors = {
        (e["row"], e["field"]): (e["value"], e["code"], e["reason"]) for e in answer["errors"]
    }
    assert errors[(1, "meter")][:2] == ("0399999999", "unknown_meter")
    assert errors[(2, "ts")][:2] == ("27/11/2026 08:30", "bad_time")
    assert errors[(3, "value")] == (-1.0, "negative", "negative")
    assert errors[(4, "value")][1] == "not_a_number" and "not a string" in errors[(4, "value")][2]
    assert errors[(5, "meter")] == (320000001, "wrong_type", "must be a string, not a number")
    assert errors[(6, "unit")] == ("kWh", "unit_mismatch", "kWh does not fit a water meter")
    assert errors[(7, "ts")][1] == "future"
    assert errors[(8, "value")][1] == "absurd"
    assert errors[(9, "value")][1:] == ("missing", "missing")
    assert errors[(1, "events.event")][:2] == ("explosion", "unknown_event")

    assert stored(intake)["ts"].to_list() == [datetime(2025, 11, 27, 0, 15, tzinfo=UTC)]
    events = intake.stores.events.read()
    assert events.select("meter", "event").rows() == [("0320000002", "power_off")]

    run = ImportRun.objects.get()
    assert run.source == "http push from hes-meishan"
    assert run.rejected == 10 and run.accepted == 2
    assert run.rejected_by_reason["unknown_meter"] == 1
    kept = {(r.line, r.field): (r.value, r.code) for r in Rejection.objects.filter(run=run)}
    assert kept[(1, "meter")] == ("0399999999", "unknown_meter")
    assert kept[(1, "events.event")] == ("explosion", "unknown_event")
    assert len(kept) == len(answer["errors"])


def test_csv_errors_give_the_line(client, intake, meters, token):
    body = b"meter,ts,value,unit\n0320000001,2025-11-27T08:15:00+08:00,abc,kWh\n"
    response = push(client, token, body, "text/csv")
    assert response.status_code == 422  # nothing accepted
    (error,) = response.json()["errors"]
    assert error == {
        "row": 0,
        "line": 2,
        "field": "value",
        "value": "abc",
        "reason": "not a number",
        "code": "not_a_number",
    }


def test_resending_with_the_same_key_gets_the_same_answer_and_stores_nothing_twice(
    client, intake, meters, token
):
    body = {
        "unit": "kWh",
        "readings": [
            {"meter": "0320000001", "ts": "2025-11-27T08:15:00+08:00", "value": 0.4},
            {"meter": "0399999999", "ts": "2025-11-27T08:15:00+08:00", "value": 0.4},
        ],
    }
    first = push(client, token, body, key="batch-0001")
    assert first.status_code == 200 and first.json()["accepted"] == 1
    again = push(client, token, body, key="batch-0001")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert stored(intake).height == 1
    assert ImportRun.objects.count() == 1  # the rejected row is kept once, not per send

    body["readings"][0]["value"] = 0.5
    reused = push(client, token, body, key="batch-0001")
    assert reused.status_code == 422
    assert "already used" in reused.json()["error"] and "different body" in reused.json()["error"]
    assert stored(intake)["value"].to_list() == [0.4]

    # Keys belong to a token: another source may use the same key for its own batch.
    other = ApiToken.issue("other-source")[1]
    assert push(client, other, body, key="batch-0001").json()["replaced"] == 1
    assert PushedBatch.objects.count() == 2


def test_a_batch_the_store_cannot_take_is_a_503_and_can_be_sent_again(
    client, intake, meters, token, monkeypatch
):
    body = {
        "unit": "kWh",
        "readings": [{"meter": "0320000001", "ts": "2025-11-27T00:15:00Z", "value": 0.4}],
    }

    def disk_full(frame):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(intake.stores.readings, "write", disk_full)
        response = push(client, token, body, key="k-1")
    assert response.status_code == 503
    assert "No space left on device" in response.json()["error"]
    assert "again" in response.json()["error"]
    assert not PushedBatch.objects.exists()  # the failure is not replayed to the retry
    retry = push(client, token, body, key="k-1")
    assert retry.status_code == 200 and retry.json()["accepted"] == 1


def test_a_correction_replaces_and_a_repeat_is_a_duplicate(client, intake, meters, token):
    reading = {"meter": "0320000001", "ts": "2025-11-27T08:15:00+08:00", "value": 0.4}
    push(client, token, {"unit": "kWh", "readings": [reading]})
    repeat = push(client, token, {"unit": "kWh", "readings": [reading]}).json()
    assert (repeat["accepted"], repeat["duplicate"]) == (0, 1)
    fixed = push(client, token, {"unit": "kWh", "readings": [{**reading, "value": 0.45}]}).json()
    assert fixed["replaced"] == 1
    assert intake.stores.readings.read()["value"].to_list() == [0.45]


@pytest.mark.parametrize(
    "body,content_type,status,message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "application/json", 400, "not valid JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "text/csv", 400, "binary"),
        (b"meter,ts,value\n\x81\x30,x,1", "text/csv", 400, "neither UTF-8 nor GB18030"),
        (b"meter,ts,value\n1,2,3", "text/csv; charset=klingon", 400, "unknown charset"),
        (b"", "application/json", 400, "body is empty"),
        (b'{"readings": [', "application/json", 400, "not valid JSON"),
        (b'{"rows": []}', "application/json", 400, "unknown top-level key(s) 'rows'"),
        (b'{"readings": {}}', "application/json", 400, "'readings' must be a JSON array"),
        (b"[]", "application/json", 400, "no readings"),
        (b'"hello"', "application/json", 400, "not a string"),
        (b'{"unit": "kwh", "readings": []}', "application/json", 400, "top-level unit 'kwh'"),
        (b"a,b\n1,2\n", "text/csv", 400, "lacks column(s) meter, ts, value"),
        (b"meter,ts,value,unit\n1,2\n3,4,5,6,7\n", "text/csv", 400, "not readable CSV"),
        (b"<xml/>", "application/xml", 415, "send application/json or text/csv"),
    ],
)
def test_a_body_that_is_not_a_batch_gets_a_clear_4xx(
    client, intake, meters, token, body, content_type, status, message
):
    response = push(client, token, body, content_type)
    assert response.status_code == status
    assert message in response.json()["error"]


_ANY = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.lists(st.integers())


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        # Well-formed batches with hostile values, to reach the per-row checks.
        st.fixed_dictionaries(
            {
                "unit": st.sampled_from(["kWh", "m3"]),
                "readings": st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "meter": st.sampled_from(["0320000001", "W0001", "", "x" * 40]) | _ANY,
                            "ts": st.sampled_from(
                                ["2025-11-27T08:15:00+08:00", "2025-11-27 08:15", "2099-01-01"]
                            )
                            | _ANY,
                            "value": st.floats() | _ANY,
                            "unit": st.sampled_from(["kWh", "kW", "V", "m3", "kwh"]) | _ANY,
                        },
                    ),
                    max_size=6,
                ),
                "events": st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "meter": st.sampled_from(["0320000001", "nope"]) | _ANY,
                            "ts": st.sampled_from(["2025-11-27T08:15:00+08:00"]) | _ANY,
                            "event": st.sampled_from(["power_off", "boom"]) | _ANY,
                            "detail": _ANY,
                        },
                    ),
                    max_size=3,
                ),
            }
        ).map(lambda doc: json.dumps(doc).encode()),
        st.lists(
            st.lists(
                st.sampled_from(
                    [
                        "0320000001",
                        "2025-11-27 08:15",
                        "0.5",
                        "kWh",
                        "",
                        "x,y",
                        '"',
                        "-1",
                        "nan",
                        "1e999",
                    ]
                ),
                min_size=1,
                max_size=5,
            ),
            max_size=5,
        ).map(
            lambda rows: "\n".join(["meter,ts,value,unit"] + [",".join(r) for r in rows]).encode()
        ),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=12),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(
                        ["readings", "events", "unit", "meter", "ts", "value", "event"]
                    ),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=12,
        ).map(lambda doc: json.dumps(doc).encode()),
    ),
    content_type=st.sampled_from(["application/json", "text/csv"]),
)
def test_no_body_gets_a_500(client, intake, meters, token, body, content_type):
    response = push(client, token, body, content_type)
    assert response.status_code in (200, 400, 422), response.content
    answer = response.json()
    if response.status_code == 400:
        assert answer["error"]
    elif "received" in answer:
        # Every row is accounted for: stored, or refused with a reason.
        counted = answer["accepted"] + answer["replaced"] + answer["duplicate"]
        assert counted + answer["rejected"] == answer["received"]
        assert (
            len({(e["field"].startswith("events."), e["row"]) for e in answer["errors"]})
            == (answer["rejected"])
        )


def test_the_schema_is_served_and_its_examples_are_accepted(client, intake, meters, token):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema == json.loads(Path(views.SCHEMA_PATH).read_text())
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {"/v1/readings", "/openapi.json"}
    Meter.objects.filter(number="0320000001").update(number="3200000001")
    content = schema["paths"]["/v1/readings"]["post"]["requestBody"]["content"]
    for content_type, media in content.items():
        for name, example in media["examples"].items():
            response = push(client, token, example["value"], content_type)
            assert response.status_code == 200, (name, response.content)
            assert response.json()["rejected"] == 0, name
    documented = set(schema["components"]["schemas"]["RowError"]["properties"]["code"]["enum"])
    from lianxin.ingest.api import rows

    source = Path(rows.__file__).read_text()
    for code in documented:
        assert f'"{code}"' in source


def test_admin_shows_a_new_token_once_and_revokes(client):
    admin = get_user_model().objects.create_superuser("root", password="a-long-password")
    client.force_login(admin)
    response = client.post(
        "/admin/ingest_api/apitoken/add/", {"name": "hes-2", "note": "meishan"}, follow=True
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    token = ApiToken.objects.get(name="hes-2")
    # The full token (the "added" message also names the token by its short prefix).
    raw = max((t for m in shown for t in re.findall(r"lx_[A-Za-z0-9_-]+", m)), key=len)
    assert len(raw) > 40
    assert token.created_by == admin
    assert raw.startswith(token.prefix) and raw not in token.token_hash
    page = client.get(f"/admin/ingest_api/apitoken/{token.pk}/change/").content.decode()
    assert raw not in page

    client.post(
        "/admin/ingest_api/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert push(client, raw, []).status_code == 401


def test_pushed_readings_are_judged_by_the_contracts_row_checks_every_field_named():
    """One place decides what a plausible reading is (lianxin.meterdata): the push API refuses a
    value just over the contract's limit for its unit and takes one at the limit, and a row that
    is wrong in its value and its time gets an error for each, naming row, field and value."""
    from lianxin.ingest.api.rows import parse_rows
    from lianxin.meterdata import UNITS, limit

    kinds = {"E1": "electricity", "W1": "water"}
    readings = []
    for name, unit in UNITS.items():
        meter = "E1" if "electricity" in unit.kinds else "W1"
        top = limit(name)
        readings.append(
            {"meter": meter, "ts": "2025-11-27T08:15:00+08:00", "value": top, "unit": name}
        )
        readings.append(
            {"meter": meter, "ts": "2025-11-27T08:15:00+08:00", "value": top * 1.01, "unit": name}
        )
    both = len(readings)
    readings.append({"meter": "E1", "ts": "2099-01-01T00:00:00+08:00", "value": -2, "unit": "kWh"})
    parsed = parse_rows(
        readings,
        [],
        meter_kinds=lambda ms: {m: kinds[m] for m in ms if m in kinds},
        time_zone="Asia/Shanghai",
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    refused = {(e.row, e.field): (e.value, e.code) for e in parsed.errors}
    over = {i for i in range(1, both, 2)}
    assert {r for r, f in refused if r < both} == over
    assert all(refused[(i, "value")][1] == "absurd" for i in over)
    assert parsed.readings["row"].to_list() == list(range(0, both, 2))
    assert refused[(both, "value")] == (-2.0, "negative")
    assert refused[(both, "ts")] == ("2099-01-01T00:00:00+08:00", "future")
