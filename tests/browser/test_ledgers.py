"""The ledgers in a real Chromium: a team lead opens the figures dashboard (ECharts draws on
canvases) and the three ledgers in both languages; a field member is refused with 403.
Screenshots go to test-artifacts/ledgers-*.png."""

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from lianxin.care.seed import seed_demo_town
from lianxin.ledgers.demo import seed_history
from lianxin.ledgers.figures import Period, Scope, figures
from tests.browser.test_duty_room import LOCALES, _t, chromium, shot, sign_in  # noqa: F401

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def history(transactional_db):
    seed_demo_town(seed=7, households=60, areas=3)
    now = timezone.now()
    seed_history(seed=7, now=now)
    return Period.containing((now - timedelta(days=now.day + 1)).date())


CANVAS_DRAWN = (
    "id => { const el = document.getElementById(id);"
    " const c = el && window.echarts && echarts.getInstanceByDom(el);"
    " return !!c && el.querySelector('canvas') !== null && c.getOption().series.length > 0; }"
)


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_a_team_lead_reads_the_figures_and_ledgers(chromium, live_server, history, lang):  # noqa: F811
    base = live_server.url
    month = f"{history.first:%Y-%m}"
    f = figures(Scope(history))
    ctx = chromium.new_context(locale=LOCALES[lang], viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    sign_in(page, base, "lead")
    page.click(f"nav >> text={_t(lang, 'Ledgers')}")
    page.wait_for_url(f"{base}/ledgers/")
    page.goto(f"{base}/ledgers/?month={month}")
    for chart in ("chart-daily", "chart-kinds", "chart-response"):
        page.wait_for_function(CANVAS_DRAWN, arg=chart, timeout=15_000)
    assert page.inner_text("#fig-visits") == str(f["visits"])
    assert page.inner_text("#fig-activities") == str(f["activities"])
    assert _t(lang, "satisfaction rate") in page.inner_text("#figures")
    shot(page, f"ledgers-dashboard-{lang}")

    for slug, title in [
        ("recipients", "Care-recipient ledger"),
        ("demand", "Service-demand ledger"),
        ("records", "Service-record ledger"),
    ]:
        page.click(f".ledger-nav >> text={_t(lang, title)}")
        page.wait_for_url(f"{base}/ledgers/{slug}/")
        if slug != "recipients":
            page.fill("input[name=month]", month)
            page.click("#filters button[type=submit]")
            page.wait_for_load_state("networkidle")
        assert page.locator("#ledger tbody tr").count() > 1
        assert _t(lang, title) in page.inner_text("h1")
        assert page.locator("#export-xlsx").is_visible()
        shot(page, f"ledgers-{slug}-{lang}")

    page.goto(f"{base}/ledgers/campaigns/")
    page.click("table.dense a")
    page.wait_for_function(CANVAS_DRAWN, arg="chart-campaign", timeout=15_000)
    shot(page, f"ledgers-campaign-{lang}")
    ctx.close()


def test_a_field_member_gets_403(chromium, live_server, history):  # noqa: F811
    base = live_server.url
    ctx = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    page = ctx.new_page()
    sign_in(page, base, "field1")
    for url in ["/ledgers/", "/ledgers/records/", "/ledgers/recipients.xlsx"]:
        response = page.goto(f"{base}{url}")
        assert response.status == 403, url
    assert "Ledgers" not in page.content() and "台账" not in page.inner_text("header")
    ctx.close()
