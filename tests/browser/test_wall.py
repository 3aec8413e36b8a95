"""The wall screen, the map, the resident search and the case context in a real Chromium, once
per language: the wall role's big display (dark, large type, live counters, a running timer for
the oldest unacknowledged alert, the map) refuses every action; an operator finds a resident
from the header's search box, opens the map and clicks an alerted home to its case, which lists
the home's earlier alerts and, for a prepaid cut-off, the balance and the payments.
Screenshots go to test-artifacts/wall-*.png, map-*.png and search-*.png."""

import os
import re
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from lianxin.alerts import service as alerts
from lianxin.alerts.models import Alert, Outcome
from lianxin.care.models import CareRecipient, Household
from lianxin.care.seed import seed_demo_town
from lianxin.dispatch import service as dispatch
from lianxin.store import open_stores
from tests.alerts.helpers import finding, outage
from tests.browser.test_duty_room import LOCALES, _t, chromium, shot, sign_in  # noqa: F401

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def duty_room(transactional_db):
    """A town with a dispatched no_power case, an inactivity alert nobody has acknowledged for
    47 minutes, a high load, a grid outage, and a prepaid cut-off at a home with an earlier,
    resolved alert and payments on record."""
    seed_demo_town(seed=7, households=40, areas=4)
    now = datetime.now(UTC)
    people = list(
        CareRecipient.objects.filter(team__name="连心桥服务队").select_related("household")
    )
    op = get_user_model().objects.get(username="operator")
    field1 = get_user_model().objects.get(username="field1")
    [no_power] = alerts.apply_findings([finding(people[0].household, started=now)])
    dispatch.dispatch(op, no_power, field1, "check the fuse box")
    [waiting] = alerts.apply_findings(
        [finding(people[1].household, "inactivity", "warning", started=now - timedelta(hours=2))]
    )
    Alert.objects.filter(pk=waiting.pk).update(opened_at=now - timedelta(minutes=47))
    alerts.apply_findings([finding(people[2].household, "high_load", "warning", started=now)])
    far = Household.objects.exclude(transformer_area=people[0].household.transformer_area).first()
    alerts.apply_findings([outage(far.transformer_area, [far], started=now)])

    prepaid_home = people[3].household
    [earlier] = alerts.apply_findings(
        [finding(prepaid_home, "inactivity", "warning", started=now - timedelta(days=9))]
    )
    alerts.resolve(earlier, op, Outcome.RESIDENT_FINE)
    [cut] = alerts.apply_findings(
        [finding(prepaid_home, "prepaid_cutoff", "critical", started=now)]
    )
    meter = prepaid_home.meters.filter(kind="electricity").first()
    meter.prepaid = True
    meter.save()
    stores = open_stores(settings.LIANXIN_HOME)
    us = pl.col("ts").dt.cast_time_unit("us")
    stores.balances.write(
        pl.DataFrame(
            {"meter": [meter.number], "ts": [now - timedelta(hours=1)], "balance": [-3.2]}
        ).with_columns(us)
    )
    stores.payments.write(
        pl.DataFrame(
            {
                "account": [meter.account_number] * 2,
                "ts": [now - timedelta(days=61), now - timedelta(days=30)],
                "amount": [200.0, 88.5],
                "channel": ["网上国网", "营业厅"],
            }
        ).with_columns(us)
    )
    return {"people": people, "waiting": waiting, "cut": cut, "earlier": earlier}


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_wall_screen_map_search_and_case_context(chromium, live_server, duty_room, lang):  # noqa: F811
    base = live_server.url

    # ---- the wall: a 1920x1080 display signed in with the read-only wall role ----
    wall_ctx = chromium.new_context(locale=LOCALES[lang], viewport={"width": 1920, "height": 1080})
    wall = wall_ctx.new_page()
    sign_in(wall, base, "wall")
    wall.goto(f"{base}/wall/")
    wall.wait_for_function(
        "() => document.body.dataset.ready === '1'"
        " && document.getElementById('town-map').dataset.ready === '1'",
        timeout=15_000,
    )
    counts = {
        li.get_attribute("data-key"): int(li.locator("strong").inner_text())
        for li in wall.locator("#wall-severity li").all()
    }
    assert counts == {"critical": 3, "warning": 2, "info": 0}
    assert _t(lang, "critical") in wall.inner_text("#wall-severity")
    assert _t(lang, "Oldest unacknowledged") in wall.inner_text("body")
    oldest = wall.locator("#wall-oldest .oldest-card")
    assert oldest.get_attribute("data-id") == str(duty_room["waiting"].pk)
    assert _t(lang, "no activity") in oldest.inner_text()
    # The timer runs: it reads 00:47:xx and changes without a reload.
    first = wall.inner_text("#oldest-timer")
    assert re.fullmatch(r"00:4[78]:\d\d", first), first
    wall.wait_for_function(
        f"() => document.getElementById('oldest-timer').textContent !== '{first}'"
    )
    # Readable at 3 m: big numbers, light on dark.
    style = wall.evaluate(
        "() => { const n = getComputedStyle(document.querySelector('#wall-severity strong'));"
        " const b = getComputedStyle(document.body);"
        " return [parseFloat(n.fontSize), b.backgroundColor, b.color]; }"
    )
    assert style[0] >= 96
    assert style[1] == "rgb(13, 17, 23)"
    # The map: every home with coordinates, the open alerts and the crew's order.
    town_map = wall.locator("#town-map")
    assert int(town_map.get_attribute("data-homes")) == Household.objects.count()
    assert int(town_map.get_attribute("data-orders")) == 1
    assert int(town_map.get_attribute("data-alerts")) == 4
    assert town_map.locator("canvas").first.bounding_box()["width"] > 800
    # No action goes through from the wall's session, whatever it posts.
    status = wall.evaluate(
        "async id => { const r = await fetch(`/alerts/${id}/acknowledge`, {method: 'POST',"
        " headers: {'X-CSRFToken': (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || ''}});"
        " return r.status; }",
        duty_room["waiting"].pk,
    )
    assert status == 403
    duty_room["waiting"].refresh_from_db()
    assert duty_room["waiting"].status == "open"
    # Live: a new critical alert appears on the wall without a reload (the 10 s poll).
    [new] = alerts.apply_findings(
        [finding(duty_room["people"][4].household, started=datetime.now(UTC))]
    )
    wall.wait_for_function(
        "() => document.querySelector('#wall-severity li[data-key=critical] strong')"
        ".textContent === '4'",
        timeout=20_000,
    )
    assert wall.locator("#wall-latest li").first.get_attribute("data-id") == str(new.pk)
    assert _t(lang, "no power at home") in wall.inner_text("#wall-latest li:first-child")
    shot(wall, f"wall-{lang}")
    wall_ctx.close()

    # ---- an operator: search from the header, the map, the case context ----
    ctx = chromium.new_context(locale=LOCALES[lang], viewport={"width": 1440, "height": 900})
    op = ctx.new_page()
    sign_in(op, base, "operator")
    person = duty_room["people"][3]
    search = op.locator("#header-search")
    assert search.get_attribute("placeholder") == _t(
        lang, "Name, phone, address, account or meter no."
    )
    search.fill(person.name)
    search.press("Enter")
    op.wait_for_url(re.compile(r"/residents/\?q="))
    rows = op.locator("#directory tbody tr[data-code]")
    assert person.household.code in rows.evaluate_all("rs => rs.map(r => r.dataset.code)")
    assert person.household.address in op.inner_text("#directory") or lang == "en"
    shot(op, f"search-{lang}")
    # By meter number too, then on to the home.
    search = op.locator("#header-search")
    search.fill(person.household.meters.first().number)
    search.press("Enter")
    op.wait_for_load_state("networkidle")
    assert rows.count() == 1
    rows.first.locator("a").first.click()
    op.wait_for_url(re.compile(rf"/households/{person.household.code}/"))

    op.goto(f"{base}/map/")
    op.wait_for_function(
        "() => document.getElementById('town-map').dataset.ready === '1'", timeout=15_000
    )
    assert _t(lang, "Map") in op.title()
    shot(op, f"map-{lang}")
    # Clicking the cut-off home's marker opens its case.
    home = person.household
    x, y = op.evaluate(
        "pt => window.lianxinMap.convertToPixel({geoIndex: 0}, pt)",
        [float(home.longitude), float(home.latitude)],
    )
    box = op.locator("#town-map").bounding_box()
    op.mouse.click(box["x"] + x, box["y"] + y)
    op.wait_for_url(re.compile(rf"/alerts/{duty_room['cut'].pk}/$"), timeout=10_000)
    prepaid = op.inner_text("#prepaid")
    assert _t(lang, "Prepaid balance and payments") in prepaid
    assert "¥-3.20" in prepaid and "¥88.50" in prepaid and "¥200.00" in prepaid
    previous = op.inner_text("#previous-alerts")
    assert _t(lang, "This home's previous alerts") in previous
    assert _t(lang, Outcome.RESIDENT_FINE.label) in previous
    shot(op, f"case-context-{lang}")
    ctx.close()
