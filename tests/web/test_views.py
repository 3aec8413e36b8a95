from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from tests.web.helpers import as_user
from tests.web.readings import write_real_curve

pytestmark = pytest.mark.django_db


def test_pages_need_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("language,text", [("zh-hans", "登录"), ("en", "Sign in")])
def test_sign_in_page_speaks_the_browser_language(client, language, text):
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    assert text in response.content.decode()


def test_signed_in_overview(client):
    user = get_user_model().objects.create_user("op", password="a-long-password")
    client.force_login(user)
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "households" in response.content.decode()


def test_health_and_echarts_are_served_locally(client):
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    response = client.get("/static/vendor/echarts/echarts.min.js")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"echarts" in body[:5000]


def test_each_role_lands_on_its_own_start_page(client, case):
    assert as_user(client, "operator").get("/")["Location"] == "/alerts/"
    assert as_user(client, "field1").get("/")["Location"] == "/dispatch/field/"


def test_chart_data_has_the_real_curve_the_usual_band_and_the_alert_start(client, case):
    home, alert = case["home"], case["alert"]
    now = datetime.now(UTC)
    write_real_curve(home.meters.get(kind="electricity"), days=40, now=now)
    as_user(client, "operator")
    data = client.get(f"/households/{home.code}/load.json?range=48h&alert={alert.pk}").json()
    assert 90 <= len(data["load"]) <= 97  # half-hourly for 48 hours
    assert all(v >= 0 for _, v in data["load"])
    assert len(data["band"]) >= 90 and all(lo <= hi for _, lo, hi in data["band"])
    assert data["marks"][0]["at"] >= data["start"]
    assert datetime.fromisoformat(data["latest_reading"]) > now - timedelta(hours=1)
    month = client.get(f"/households/{home.code}/load.json?range=30d").json()
    # Hourly means over 30 days (not 1,440 half-hours), with the band on the same hours.
    assert 700 <= len(month["load"]) <= 722
    assert len(month["band"]) >= 700
    assert all(t % 3_600_000 == 0 for t, _ in month["load"])
    assert all(t % 3_600_000 == 0 for t, _, _ in month["band"])
    assert client.get(f"/households/{home.code}/load.json?range=1y").status_code == 404


def test_chart_data_for_a_home_without_readings_is_empty_not_an_error(client, case):
    as_user(client, "operator")
    data = client.get(f"/households/{case['home'].code}/load.json").json()
    assert (data["load"], data["latest_reading"]) == ([], None)


def test_chart_data_with_an_unreadable_alert_is_a_400_with_a_message(client, case):
    as_user(client, "operator")
    response = client.get(
        f"/households/{case['home'].code}/load.json?alert=²", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 400 and "alert" in response.json()["error"]


@pytest.mark.parametrize(
    "method,url",
    [
        ("get", "/alerts/{n}/"),
        ("get", "/dispatch/orders/{n}/"),
        ("post", "/alerts/away/{n}/end"),
        ("post", "/alerts/{n}/note"),
    ],
)
def test_an_id_too_long_for_any_row_is_not_found(client, case, method, url):
    as_user(client, "admin")
    response = getattr(client, method)(url.format(n="9" * 30))
    assert response.status_code == 404
