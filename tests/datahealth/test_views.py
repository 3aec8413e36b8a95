"""The data-health page: per source and day what was accepted and rejected (with links to the
rejected rows), files quarantined whole, damaged store files, late data and silent meters; for
those who may see import runs only, in both languages."""

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from django.contrib.auth import get_user_model

from lianxin.care.models import Household, Meter
from lianxin.ingest.api import views as api_views
from lianxin.ingest.api.intake import Intake
from lianxin.ingest.api.models import ApiToken
from lianxin.ingest.pipeline import import_file
from lianxin.ingest.readers import Options
from lianxin.store import open_stores
from tests.alerts.helpers import town

pytestmark = pytest.mark.django_db
URL = "/data-health/"


@pytest.fixture
def site(settings, tmp_path, monkeypatch, client):
    settings.LIANXIN_HOME = tmp_path
    monkeypatch.setattr(api_views, "_intake", Intake(tmp_path))
    town()
    home = Household.objects.create(code="DH1", address="x")
    Meter.objects.create(number="DH-M1", account_number="A", household=home)
    Meter.objects.create(number="DH-SILENT", account_number="A", household=home)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    token = ApiToken.issue("hes-east")[1]
    body = {
        "unit": "kWh",
        "readings": [
            {"meter": "DH-M1", "ts": (now - timedelta(minutes=30)).isoformat(), "value": 0.2},
            {"meter": "DH-M1", "ts": (now - timedelta(minutes=15)).isoformat(), "value": -1},
            {"meter": "NOPE", "ts": (now - timedelta(minutes=15)).isoformat(), "value": 0.1},
        ],
    }
    answer = client.generic(
        "POST",
        "/api/v1/readings",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert answer.status_code == 200, answer.content
    # A late reading (yesterday's, arriving now) from a file, and a file nothing could be read of.
    drop = tmp_path / "drop"
    drop.mkdir()
    late = (now - timedelta(hours=3)).astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    (drop / "late.csv").write_text(f"meter,ts,value,unit\nDH-M1,{late},0.3,kWh\n")
    (drop / "junk.csv").write_bytes(b"\x00\x01\x02")
    for name in ("late.csv", "junk.csv"):
        import_file(drop / name, Options(time_zone="Asia/Shanghai"))
    # A damaged file in today's partition.
    stores = open_stores(tmp_path)
    stores.readings.write(
        pl.DataFrame(
            {
                "meter": ["DH-M1"],
                "ts": [now - timedelta(minutes=45)],
                "value": [0.1],
                "unit": ["kWh"],
            }
        )
    )
    victim = max(
        (tmp_path / "readings").glob("day=*/*.parquet"), key=lambda p: p.stat().st_mtime_ns
    )
    victim.write_bytes(victim.read_bytes()[:50])
    stores.readings.read()
    return {"now": now, "victim": victim}


def as_user(client, username):
    client.force_login(get_user_model().objects.get(username=username))
    return client


def test_only_who_may_see_import_runs_sees_the_page(client, site):
    assert client.get(URL).status_code == 302
    assert as_user(client, "operator").get(URL).status_code == 403
    assert as_user(client, "field1").get(URL + "rejections/?runs=1").status_code == 403


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_the_page_names_what_came_what_was_refused_and_what_is_wrong(client, site, lang):
    page = as_user(client, "admin").get(URL + "?days=7", HTTP_ACCEPT_LANGUAGE=lang)
    assert page.status_code == 200
    html = page.content.decode()
    assert ("Data health" if lang == "en" else "数据健康") in html
    assert "http push from hes-east" in html
    assert "negative" in html and "unknown_meter" in html
    assert "files in" in html
    assert site["victim"].name in html  # the damaged file, named
    assert "DH-SILENT" in html  # silent for 24 hours
    sources = page.context["sources"]
    push = next(r for r in sources if r.source == "http push from hes-east")
    assert (push.deliveries, push.accepted, push.rejected) == (1, 1, 2)
    files = next(r for r in sources if r.source.startswith("files in"))
    assert files.deliveries == 2 and files.quarantined == 1 and files.accepted == 1
    today = next(d for d in page.context["store_days"] if d.damaged)
    assert today.meters_silent >= 1
    assert sum(d.late for d in page.context["store_days"]) >= 1


def test_the_rejections_link_lists_the_rejected_rows(client, site):
    page = as_user(client, "admin").get(URL)
    push = next(r for r in page.context["sources"] if r.source.startswith("http push"))
    listed = client.get(f"{URL}rejections/?runs={','.join(map(str, push.runs))}&code=negative")
    assert listed.status_code == 200
    rows = list(listed.context["page"])
    assert [(r.field, r.value, r.code) for r in rows] == [("value", "-1.0", "negative")]
    assert client.get(f"{URL}rejections/?runs=abc,%00&code=x").status_code == 200
    # An id too big for the database's integers, and a non-ASCII digit: an empty list, not a 500.
    assert client.get(f"{URL}rejections/?runs={'9' * 40},%C2%B2").status_code == 200
    assert client.get(f"{URL}?days=%00").status_code == 200
