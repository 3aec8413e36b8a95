"""The directory, the wall screen's role and figures, the map's data, and the case page's
context (previous alerts, prepaid balance and payments)."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import translation

from lianxin.alerts import service as alerts
from lianxin.alerts.models import Alert, Outcome, Status
from lianxin.care.models import CareRecipient
from lianxin.care.seed import DEMO_PASSWORD
from lianxin.store import open_stores
from lianxin.wall.service import area_outline, convex_hull
from tests.alerts.helpers import finding, outage
from tests.web.helpers import as_user

pytestmark = pytest.mark.django_db


def test_directory_searches_within_the_team_and_filters(client, case):
    home = case["home"]
    person = home.care_recipients.first()
    other = CareRecipient.objects.filter(team__name="湖滨服务队").first()
    page = as_user(client, "operator").get(reverse("wall:directory"), {"q": person.name})
    assert page.status_code == 200
    body = page.content.decode()
    assert person.name in body and home.address in body
    assert 'class="tag bad"' in body  # the dispatched alert shows as open
    as_user(client, "field1")
    hidden = client.get(reverse("wall:directory"), {"q": other.name})
    assert list(hidden.context["page"].object_list) == []
    assert 'id="directory"' in hidden.content.decode()
    listing = client.get(reverse("wall:directory")).context["page"].object_list
    assert home in listing and other.household not in listing
    area_filtered = as_user(client, "operator").get(
        reverse("wall:directory"), {"area": home.transformer_area_id, "scope": "all"}
    )
    rows = list(area_filtered.context["page"].object_list)
    assert home in rows and len(rows) > 1  # every home of the area, enrolled or not
    assert {h.transformer_area_id for h in rows} == {home.transformer_area_id}


def test_directory_refuses_bad_input_with_a_message_and_is_not_for_the_wall(client, case):
    bad = as_user(client, "operator").get(reverse("wall:directory"), {"area": "x"})
    assert bad.status_code == 400
    assert as_user(client, "wall").get(reverse("wall:directory")).status_code == 403


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_header_search_box_on_every_page_in_both_languages(client, case, lang):
    as_user(client, "operator")
    client.cookies["django_language"] = lang
    body = client.get(reverse("alerts:queue"), HTTP_ACCEPT_LANGUAGE=lang).content.decode()
    with translation.override(lang):
        placeholder = translation.gettext("Name, phone, address, account or meter no.")
    assert 'id="header-search"' in body and placeholder in body
    if lang == "zh-hans":
        assert "姓名" in placeholder


def test_the_wall_role_reads_but_every_post_is_refused(client, case):
    alert = case["alert"]
    as_user(client, "wall")
    assert client.get(reverse("wall:screen")).status_code == 200
    assert client.get(reverse("alerts:queue")).status_code == 200
    for name in ("alerts:acknowledge", "alerts:resolve", "alerts:call", "alerts:note"):
        assert (
            client.post(reverse(name, args=[alert.pk]), {"outcome": "resident_fine"}).status_code
            == 403
        )
    assert client.post(reverse("dispatch:hotline"), {}).status_code == 403
    alert.refresh_from_db()
    assert alert.status == Status.DISPATCHED
    # Choosing the language and signing out still work.
    assert client.post(reverse("set_language"), {"language": "en"}).status_code == 302
    assert client.post(reverse("logout")).status_code in (200, 302)
    assert client.get(reverse("wall:screen")).status_code == 302  # signed out: to sign in


def test_the_wall_session_lasts_long_and_the_operators_a_shift(client, case):
    def sign_in(username):
        client.cookies.clear()
        answer = client.post(reverse("login"), {"username": username, "password": DEMO_PASSWORD})
        assert answer.status_code == 302
        return int(answer.cookies[settings.SESSION_COOKIE_NAME]["max-age"])

    assert sign_in("wall") == settings.WALL_SESSION_AGE
    assert client.session.get_expiry_age() == settings.WALL_SESSION_AGE
    assert settings.WALL_SESSION_AGE >= 7 * 86400 > settings.SESSION_COOKIE_AGE
    assert client.get(reverse("wall:data")).status_code == 200
    assert sign_in("operator") == settings.SESSION_COOKIE_AGE


def test_wall_figures_count_by_severity_state_and_show_the_oldest_unacknowledged(client, case):
    home = case["home"]
    others = list(type(home).objects.exclude(pk=home.pk).filter(care_recipients__isnull=False)[:2])
    now = datetime.now(UTC)
    [older] = alerts.apply_findings(
        [finding(others[0], "inactivity", "warning", started=now - timedelta(hours=3))]
    )
    Alert.objects.filter(pk=older.pk).update(opened_at=now - timedelta(hours=2))
    alerts.apply_findings([finding(others[1], "high_load", "warning", started=now)])
    data = as_user(client, "wall").get(reverse("wall:data")).json()
    sev = {c["key"]: c["n"] for c in data["severity"]}
    assert sev == {"critical": 1, "warning": 2, "info": 0}
    states = {c["key"]: c["n"] for c in data["states"]}
    assert states["open"] == 2 and states["dispatched"] == 1
    assert data["oldest"]["id"] == older.pk
    assert datetime.fromisoformat(data["oldest"]["since"]) < now - timedelta(minutes=119)
    today = {c["key"]: c["n"] for c in data["today"]}
    assert today["raised"] == 3 and today["crews_out"] == 1
    client.cookies["django_language"] = "zh-hans"
    zh = client.get(reverse("wall:data")).json()
    assert [c["label"] for c in zh["severity"]][0] == "紧急"
    assert [c["label"] for c in zh["today"]][0] == "新告警"


def test_map_data_draws_areas_from_homes_with_alerts_outages_and_crews(client, case):
    home = case["home"]
    alerts.apply_findings([outage(home.transformer_area, [home])])
    data = as_user(client, "operator").get(reverse("wall:map_data")).json()
    by_code = {h["code"]: h for h in data["homes"]}
    assert by_code[home.code]["alert"]["severity"] == "critical"
    assert by_code[home.code]["value"] == [float(home.longitude), float(home.latitude)]
    features = {f["properties"]["name"]: f for f in data["areas"]["features"]}
    area = features[home.transformer_area.code]
    assert area["properties"]["outage"] is True
    ring = area["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) >= 4
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    assert min(xs) < float(home.longitude) < max(xs) and min(ys) < float(home.latitude) < max(ys)
    assert [o["id"] for o in data["orders"]] == [case["order"].pk]
    # Field members have no map (it shows every team's homes); the wall does.
    assert as_user(client, "field1").get(reverse("wall:map_data")).status_code == 403
    assert len(as_user(client, "wall").get(reverse("wall:map_data")).json()["homes"]) == len(
        by_code
    )


def test_convex_hull_and_outline():
    pts = [(0, 0), (2, 0), (1, 1), (2, 2), (0, 2), (1, 0.5)]
    assert sorted(convex_hull(pts)) == [(0, 0), (0, 2), (2, 0), (2, 2)]
    ring = area_outline([(103.8, 30.0)])
    assert len(ring) == 5 and ring[0] == ring[-1]


def _write_prepaid(home, now):
    meter = home.meters.filter(kind="electricity").first()
    meter.prepaid = True
    meter.save()
    stores = open_stores(settings.LIANXIN_HOME)
    stores.balances.write(
        pl.DataFrame(
            {
                "meter": [meter.number] * 2,
                "ts": [now - timedelta(days=2), now - timedelta(hours=1)],
                "balance": [35.5, -2.4],
            }
        ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    )
    stores.payments.write(
        pl.DataFrame(
            {
                "account": [meter.account_number] * 2,
                "ts": [now - timedelta(days=40), now - timedelta(days=10)],
                "amount": [100.0, 50.0],
                "channel": ["wechat", "counter"],
            }
        ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    )
    return meter


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_a_prepaid_case_shows_balance_payments_and_previous_alerts(client, case, lang):
    home = case["home"]
    now = datetime.now(UTC)
    _write_prepaid(home, now)
    alerts.resolve(
        case["alert"], get_user_model().objects.get(username="operator"), Outcome.FAULT_REPAIRED
    )
    [cut] = alerts.apply_findings([finding(home, "prepaid_cutoff", "critical", started=now)])
    as_user(client, "operator")
    client.cookies["django_language"] = lang
    body = client.get(reverse("alerts:detail", args=[cut.pk])).content.decode()
    with translation.override(lang):
        assert translation.gettext("Prepaid balance and payments") in body
        assert translation.gettext("This home's previous alerts") in body
        assert str(Outcome.FAULT_REPAIRED.label) in body
    assert "¥-2.40" in body and "¥100.00" in body and "¥50.00" in body and "wechat" in body
    assert body.index("¥50.00") < body.index("¥100.00")  # newest payment first
    assert f'href="/alerts/{case["alert"].pk}/"' in body
    # A no_power case shows the previous alerts but no payments.
    first = client.get(reverse("alerts:detail", args=[case["alert"].pk])).content.decode()
    assert 'id="prepaid"' not in first and f'href="/alerts/{cut.pk}/"' in first


def test_every_post_in_the_url_conf_is_refused_to_the_wall(client, case):
    """Walks the URL conf (a new view is covered the day it is added): whatever a wall session
    posts, with real ids, answers 403 and changes nothing; only sign-out and the language pass."""
    from tests.web import test_fuzz_views as fuzz

    as_user(client, "wall")
    before = list(Alert.objects.values_list("pk", "status", "holder_id").order_by("pk"))
    answers = {}
    for route, name in fuzz.VIEWS:
        if name in ("logout", "set_language"):
            continue
        for value in fuzz.real_path_values(route, case["home"])[:1]:
            answers[name] = client.post(fuzz.url_for(route, value), {"outcome": "false_alarm"})
    assert len(answers) > 20
    assert {n: r.status_code for n, r in answers.items() if r.status_code != 403} == {}
    assert list(Alert.objects.values_list("pk", "status", "holder_id").order_by("pk")) == before
