"""The team's records on a 390 px phone in a real Chromium: a field member uploads a photo of
the repair to their work order and names who went; records an inspection (checklist, a defect
of the area with a repair sent), a campaign day and an activity. Nothing is wider than the
screen and the buttons are thumb-sized. Screenshots go to test-artifacts/field-records-*.png."""

import os
import struct
import zlib
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from lianxin.care.models import CareRecipient, Team, TransformerArea
from lianxin.care.seed import seed_demo_town
from lianxin.dispatch import service as dispatch
from lianxin.ledgers.models import Activity, Attachment, Campaign, CampaignDay, InspectionPlan
from lianxin.ledgers.service import schedule_inspections
from tests.browser.test_duty_room import LOCALES, _t, chromium, shot, sign_in  # noqa: F401

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# The layout on a phone does not depend on the database; the forms' writes are covered on both
# databases by tests/ledgers/test_field_forms.py and test_order_record.py.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.once]


def png(width=40, height=30) -> bytes:
    """A real (decodable) PNG: a red picture, so the page's <img> has a size."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\0" + b"\xc0\x39\x2b" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def team_work(transactional_db):
    seed_demo_town(seed=7, households=24, areas=3)
    user = get_user_model().objects.get
    team = Team.objects.get(name="连心桥服务队")
    home = CareRecipient.objects.filter(team=team).select_related("household").first().household
    order = dispatch.hotline_request(
        user(username="operator"), home, user(username="field1"), "修灯"
    )
    today = timezone.localdate()
    area = TransformerArea.objects.order_by("code").first()
    plan = InspectionPlan.objects.create(
        name="廉租房小区月检",
        team=team,
        transformer_area=area,
        checklist=["表箱", "线路"],
        first_on=today,
    )
    [insp] = schedule_inspections(plan, today, today + timedelta(days=1))
    campaign = Campaign.objects.create(
        name="抗洪抢修",
        team=team,
        starts_on=today - timedelta(days=2),
        ends_on=today + timedelta(days=5),
    )
    return {"order": order, "inspection": insp, "campaign": campaign, "area": area}


def fits(page):
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # Every submit button is at least 44 px tall (a thumb, not a fingernail).
    heights = page.eval_on_selector_all(
        "main form button[type=submit]", "bs => bs.map(b => b.getBoundingClientRect().height)"
    )
    assert heights and min(heights) >= 44, heights


def test_a_field_member_records_the_teams_work_on_a_phone(chromium, live_server, team_work):  # noqa: F811
    lang = "zh-hans"
    base = live_server.url
    ctx = chromium.new_context(
        locale=LOCALES[lang], viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = ctx.new_page()
    sign_in(page, base, "field1")
    order = team_work["order"]

    # 1. A photo of the repair on the work order, and who went.
    page.goto(f"{base}/dispatch/orders/{order.pk}/")
    page.set_input_files(
        "#order-attach-form input[type=file]",
        files=[{"name": "修好了.png", "mimeType": "image/png", "buffer": png()}],
    )
    page.click("#order-attach-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    thumb = page.locator("#order-files img.thumb")
    thumb.wait_for()
    assert thumb.evaluate("img => img.complete && img.naturalWidth") == 40
    page.locator("#order-record-form input[name=members]").first.check()
    page.fill("#order-record-form textarea[name=materials]", "灯泡 1 个")
    page.click("#order-record-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "灯泡 1 个" in page.inner_text("#order-materials")
    assert Attachment.objects.get(work_order=order).uploaded_by.username == "field1"
    fits(page)
    shot(page, f"field-records-order-{lang}")

    # 2. The inspection due: the checklist, a defect of the area itself with a repair sent.
    page.click(f"header nav a:has-text('{_t(lang, 'Team records')}')")
    page.wait_for_load_state("networkidle")
    page.click("#due-inspections a")
    page.wait_for_load_state("networkidle")
    fits(page)
    page.check("#item-0 input[value=yes]")
    page.check("#item-1 input[value=no]")
    page.fill("#defect-0 input[name=defect_0]", "台区电缆外皮破损")
    page.select_option("#defect-0 select[name=repair_0]", index=1)  # the first team member
    shot(page, f"field-records-inspection-{lang}")
    page.click("#inspection-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("ul.messages li.success").count() == 1
    insp = team_work["inspection"]
    insp.refresh_from_db()
    defect = insp.defects.get()
    assert insp.done_at is not None and defect.repair_order.household is None
    assert defect.repair_order.place == team_work["area"].name

    # 3. A day of the campaign.
    page.click("#running-campaigns a")
    page.wait_for_load_state("networkidle")
    fits(page)
    page.fill("input[name=households_restored]", "1200")
    page.fill("input[name=members_out]", "62")
    page.click("#campaign-day-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert CampaignDay.objects.get(campaign=team_work["campaign"]).households_restored == 1200

    # 4. An activity.
    page.click("#new-activity")
    page.wait_for_load_state("networkidle")
    fits(page)
    page.select_option("select[name=kind]", "safety_talk")
    page.fill("input[name=title]", "用电安全讲座")
    page.fill("input[name=place]", "苏祠社区")
    page.fill("input[name=beneficiaries]", "30")
    shot(page, f"field-records-activity-{lang}")
    page.click("#activity-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert Activity.objects.get(title="用电安全讲座").beneficiaries == 30
    assert page.locator("ul.messages li.success").count() == 1
    ctx.close()


def test_the_phone_pages_fit_a_team_leads_longer_menu(chromium, live_server, team_work):  # noqa: F811
    """The team lead and the admin see more menu items than a field member: on a phone the menu
    wraps and the page stays 390 px wide, in both languages."""
    for lang, user in (("en", "lead"), ("zh-hans", "admin")):
        ctx = chromium.new_context(
            locale=LOCALES[lang], viewport={"width": 390, "height": 844}, is_mobile=True
        )
        page = ctx.new_page()
        sign_in(page, live_server.url, user)
        for path in ("/ledgers/field/", "/ledgers/field/activities/new"):
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, (lang, path)
            # Each menu item on one line: none broken into a column of single characters.
            tall = page.eval_on_selector_all(
                "header nav a", "as => as.map(a => a.getBoundingClientRect().height)"
            )
            assert tall and max(tall) < 40, tall
        ctx.close()
