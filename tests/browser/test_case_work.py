"""Working cases in a real Chromium, in both languages (issue 12, defects 12-22): the welfare list
keeps each call's result and calls again; every step confirms itself; the operator reads a work
order at the desk (back to the alert, reassign within the home's team); the hotline takes a
resident's name; the field member's tasks come most urgent first, with the household one tap
away and readable at 390 px, and satisfaction as worded choices; the audit log filters; the
admin's care-recipient form fits; /favicon.ico answers.

One test per language, each with one operator and one phone context, to keep the browser
sessions few.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from lianxin.alerts.models import Alert, KindChoices
from lianxin.alerts.service import apply_findings
from lianxin.care.models import CareRecipient, Household, Meter, Team
from lianxin.dispatch.models import AuditEntry, Call, WorkOrder
from lianxin.dispatch.views import SCORES
from lianxin.engine.findings import Finding
from lianxin.store import ReadingsStore
from tests.browser import test_duty_room as duty
from tests.browser.test_duty_room import LOCALES, _t, shot, sign_in
from tests.web.readings import write_real_curve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The duty-room tests' fixtures: one Chromium for the module, the seeded demo town.
chromium = duty.chromium
town = duty.town


def _finding(kind, severity, home, hours, en, zh, now):
    return Finding(
        kind=kind,
        severity=severity,
        started_at=now - timedelta(hours=hours),
        detected_at=now,
        household_id=home.code,
        reason_en=en,
        reason_zh=zh,
    )


def _confirmed(page, text):
    messages = page.locator("ul.messages li.success")
    assert messages.count() >= 1, f"no confirmation on {page.url}"
    assert text in messages.first.inner_text()


def _a_name_matching_several(user):
    """A part of residents' names (their surname) that several homes of team A share."""
    from lianxin.care.service import find_households

    team = Team.objects.get(name="连心桥服务队")
    names = CareRecipient.objects.filter(team=team).values_list("name", flat=True)
    for name in names:
        if find_households(name[0], user).count() >= 2:
            return name[0]
    raise AssertionError("the demo town has no shared surname")


def _unique_resident(user, exclude=()):
    from lianxin.care.service import find_households

    team = Team.objects.get(name="连心桥服务队")
    for p in CareRecipient.objects.filter(team=team).exclude(household__in=exclude):
        if find_households(p.name, user).count() == 1:
            return p
    raise AssertionError("no resident with a unique name")


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_an_operator_and_a_field_member_work_cases(chromium, live_server, town, lang):
    base = live_server.url
    users = {u.username: u for u in get_user_model().objects.all()}
    now = datetime.now(UTC)
    team_a = Team.objects.get(name="连心桥服务队")
    cared = list(Household.objects.filter(care_recipients__team=team_a).distinct().order_by("code"))
    # An outage over one area; the homes with alerts of their own lie outside it.
    area = cared[0].transformer_area
    inside = list(Household.objects.filter(transformer_area=area))
    outside = [h for h in cared if h.transformer_area != area]
    quiet_home, dark_home = outside[0], outside[1]
    write_real_curve(dark_home.meters.get(kind="electricity"), days=3)
    [quiet] = apply_findings(
        [
            _finding(
                "inactivity",
                "warning",
                quiet_home,
                5,
                "No activity since 06:10.",
                "06:10 起无活动。",
                now,
            )
        ]
    )
    op_ctx = chromium.new_context(locale=LOCALES[lang], viewport={"width": 1440, "height": 900})
    op = op_ctx.new_page()
    sign_in(op, base, "operator")

    # 17. Each step on the case page confirms itself.
    op.goto(f"{base}/alerts/{quiet.pk}/")
    op.click("#ack")
    op.wait_for_load_state("networkidle")
    _confirmed(op, _t(lang, "Alert acknowledged: you hold it."))
    op.check("#call-form input[value=no_answer]")
    op.click("#call-form button[type=submit]")
    op.wait_for_load_state("networkidle")
    _confirmed(
        op, _t(lang, "Call logged: %(result)s.") % {"result": _t(lang, Call.Result.NO_ANSWER.label)}
    )
    op.select_option("#dispatch-form select[name=assignee]", value=str(users["field1"].pk))
    op.fill("#dispatch-form textarea[name=request]", "knock twice")
    op.click("#dispatch-form button[type=submit]")
    op.wait_for_load_state("networkidle")
    first_order = WorkOrder.objects.get(alert=quiet)
    _confirmed(
        op,
        _t(lang, "Work order %(n)s sent to %(who)s.")
        % {"n": first_order.pk, "who": users["field1"].get_full_name()},
    )
    # 18. Three redirects back to the case page, one "viewed" entry.
    assert AuditEntry.objects.filter(what=f"alert {quiet.pk}: {quiet_home.code}").count() == 1

    # A critical alert arrives later and goes to the same field member.
    [dark] = apply_findings(
        [
            _finding(
                "no_power",
                "critical",
                dark_home,
                1,
                "No power since 1 hour ago.",
                "一小时前起无电。",
                now,
            )
        ]
    )
    op.goto(f"{base}/alerts/{dark.pk}/")
    op.select_option("#dispatch-form select[name=assignee]", value=str(users["field1"].pk))
    op.click("#dispatch-form button[type=submit]")
    op.wait_for_load_state("networkidle")
    assert WorkOrder.objects.filter(assignee=users["field1"]).count() == 2

    # 13. The operator opens the work order: the desk page, back to the alert, no "Arrived".
    op.goto(f"{base}/alerts/{quiet.pk}/")
    op.click(f'a[href="/dispatch/orders/{first_order.pk}/"]')
    op.wait_for_load_state("networkidle")
    assert op.locator("#arrived-form").count() == 0
    assert op.get_attribute("#order-alert", "href") == f"/alerts/{quiet.pk}/"
    offered = op.locator("#reassign-form select[name=assignee] option[value]:not([value=''])")
    offered_ids = {int(offered.nth(i).get_attribute("value")) for i in range(offered.count())}
    # The home's own team only (field3 is on the other team), and not who has it already.
    assert offered_ids == {users["field2"].pk, users["lead"].pk}
    shot(op, f"order-desk-{lang}")
    op.select_option("#reassign-form select[name=assignee]", value=str(users["field2"].pk))
    op.click("#reassign-form button[type=submit]")
    op.wait_for_load_state("networkidle")
    _confirmed(
        op,
        _t(lang, "Work order %(n)s reassigned to %(who)s.")
        % {"n": first_order.pk, "who": users["field2"].get_full_name()},
    )
    assert users["field2"].get_full_name() in op.inner_text("#order-assignee")
    # ... and back to field1, for the phone below.
    op.select_option("#reassign-form select[name=assignee]", value=str(users["field1"].pk))
    op.click("#reassign-form button[type=submit]")
    op.wait_for_load_state("networkidle")
    op.goto(f"{base}/alerts/{quiet.pk}/")
    assert users["field2"].get_full_name() in op.inner_text("#timeline")

    # 15. The hotline by the resident's name; several matches: the operator chooses.
    resident = _unique_resident(users["operator"], exclude=[quiet_home, dark_home])
    op.goto(f"{base}/dispatch/orders/")
    op.fill("#hotline-form input[name=household]", resident.name)
    op.select_option("#hotline-form select[name=assignee]", value=str(users["field2"].pk))
    op.fill("#hotline-form textarea[name=request]", "kitchen light")
    op.click("#hotline-form button[type=submit]")
    op.wait_for_load_state("networkidle")
    by_name = WorkOrder.objects.get(request="kitchen light")
    assert by_name.household_id == resident.household_id
    _confirmed(op, _t(lang, "Work order %(n)s sent.") % {"n": by_name.pk})
    surname = _a_name_matching_several(users["operator"])
    op.fill("#hotline-form input[name=household]", surname)
    op.select_option("#hotline-form select[name=assignee]", value=str(users["field2"].pk))
    op.fill("#hotline-form textarea[name=request]", "loose switch")
    op.click("#hotline-form button[type=submit]")
    op.wait_for_load_state("networkidle")
    choices = op.locator("#hotline-matches input[type=radio]")
    assert choices.count() >= 2
    # What was typed is kept while choosing.
    assert op.input_value("#hotline-form textarea[name=request]") == "loose switch"
    shot(op, f"hotline-choose-{lang}")
    # A home of field2's own team (a name can match another team's home too).
    ours = set(
        Household.objects.filter(care_recipients__team=team_a).values_list("code", flat=True)
    )
    values = [choices.nth(i).get_attribute("value") for i in range(choices.count())]
    chosen = [v for v in values if v in ours][-1]
    op.check(f'#hotline-matches input[value="{chosen}"]')
    op.click("#hotline-form button[type=submit]")
    op.wait_for_load_state("networkidle")
    assert WorkOrder.objects.get(request="loose switch").household.code == chosen
    # 17. Cancelling from the desk page confirms too.
    loose = WorkOrder.objects.get(request="loose switch")
    op.goto(f"{base}/dispatch/orders/{loose.pk}/")
    op.fill("#cancel-form input[name=note]", "resident fixed it herself")
    op.click("#cancel-form button[type=submit]")
    op.wait_for_load_state("networkidle")
    _confirmed(op, _t(lang, "Work order %(n)s cancelled.") % {"n": loose.pk})

    # 12. The welfare list: no result chosen in advance, the actual result shown, call again.
    [grid] = apply_findings(
        [
            Finding(
                kind="grid_outage",
                severity="critical",
                started_at=now - timedelta(minutes=40),
                detected_at=now,
                reason_en="41 of 44 meters on the area lost power together.",
                reason_zh="本台区 44 块电表中 41 块同时失电。",
                transformer_area=area.code,
                households=tuple(h.code for h in inside),
            )
        ]
    )
    op.goto(f"{base}/alerts/{grid.pk}/")
    code = cared[0].code
    row = op.locator(f'table.dense tbody tr:has(input[name=household][value="{code}"])')
    assert row.locator("select[name=result]").input_value() == ""
    row.locator("select[name=result]").select_option("no_answer")
    row.locator("button[type=submit]").click()
    op.wait_for_load_state("networkidle")
    row = op.locator(f'table.dense tbody tr:has(input[name=household][value="{code}"])')
    text = row.inner_text()
    assert _t(lang, Call.Result.NO_ANSWER.label) in text
    assert "✓" not in text
    assert row.locator("button[type=submit]").inner_text() == _t(lang, "Call again")
    shot(op, f"welfare-no-answer-{lang}")
    row.locator("select[name=result]").select_option("resident_fine")
    row.locator("button[type=submit]").click()
    op.wait_for_load_state("networkidle")
    row = op.locator(f'table.dense tbody tr:has(input[name=household][value="{code}"])')
    assert _t(lang, Call.Result.RESIDENT_FINE.label) in row.inner_text()
    assert list(
        Call.objects.filter(alert=grid, household__code=code)
        .order_by("at", "pk")
        .values_list("result", flat=True)
    ) == ["no_answer", "resident_fine"]
    # 17. Closing the case confirms (the outage still shows in the data: it asks first).
    op.select_option("#resolve-form select[name=outcome]", index=1)
    op.click("#resolve-form button[type=submit]")
    op.wait_for_load_state("networkidle")
    if op.locator("#confirm-persisting").count():
        assert op.locator("ul.messages li.success").count() == 0
        op.select_option("#resolve-form select[name=outcome]", index=1)
        op.check("#confirm-persisting")
        op.click("#resolve-form button[type=submit]")
        op.wait_for_load_state("networkidle")
    _confirmed(op, _t(lang, "Case closed."))

    # 14. The field member's phone: most urgent first, the household a tap away and readable.
    phone_ctx = chromium.new_context(
        locale=LOCALES[lang], viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    phone = phone_ctx.new_page()
    sign_in(phone, base, "field1")
    tasks = phone.locator("[data-order]")
    first_task = int(tasks.first.get_attribute("data-order"))
    assert WorkOrder.objects.get(pk=first_task).alert_id == dark.pk
    tasks.first.locator("a.household-link").click()
    phone.wait_for_load_state("networkidle")
    assert phone.url.endswith(f"/households/{dark_home.code}/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    # The kind of the alert ("户内无电", "no power at home") stays on one line: its text is
    # laid out in one line box, not one per character.
    kind = phone.locator("table.dense tbody tr td:nth-child(2)").first
    assert kind.inner_text().strip() == _t(lang, KindChoices.NO_POWER.label)
    lines = kind.evaluate(
        "(td) => { const r = document.createRange(); r.selectNodeContents(td);"
        " return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }"
    )
    assert lines == 1, lines
    shot(phone, f"household-phone-{lang}")
    phone.go_back()
    tasks.first.locator("a.task-top").click()
    phone.wait_for_load_state("networkidle")
    phone.click("#arrived-form button")
    phone.wait_for_load_state("networkidle")
    labels = phone.locator("#done-form fieldset.satisfaction label")
    words = labels.all_inner_texts()
    for score, label in SCORES:
        assert any(w.strip().startswith(str(score)) and _t(lang, label) in w for w in words)
    for i in range(labels.count()):
        assert labels.nth(i).bounding_box()["height"] >= 40
    shot(phone, f"field-done-{lang}")
    # Power came back before the crew finished: "done" closes without asking.
    Alert.objects.filter(pk=dark.pk).update(condition_cleared_at=now)
    phone.select_option("#done-form select[name=outcome]", "fault_repaired")
    phone.check("#done-form input[name=satisfaction][value='5']")
    phone.click("#done-form button[type=submit]")
    phone.wait_for_load_state("networkidle")
    assert WorkOrder.objects.get(pk=first_task).satisfaction == 5
    phone_ctx.close()
    op_ctx.close()


def test_audit_log_filters_admin_form_charts_and_favicon(chromium, live_server, town):
    """18: the audit log by user, day and resident; 21: the care-recipient admin form keeps the
    consent section inside it; 22: water plotted, earlier alerts marked, a readable 30-day
    view; 19: /favicon.ico answers."""
    from django.test import RequestFactory

    from lianxin.dispatch.service import audit

    base = live_server.url
    users = {u.username: u for u in get_user_model().objects.all()}
    person = town
    other = CareRecipient.objects.exclude(household=person.household).first()
    rf = RequestFactory()
    for user, home in ((users["operator"], person.household), (users["lead"], other.household)):
        request = rf.get(f"/households/{home.code}/")
        request.user = user
        audit(request, AuditEntry.Action.VIEW, f"household {home.code}", home)
    old = AuditEntry.objects.create(
        user=users["operator"],
        action="view",
        what="last month",
        path="/",
        at=datetime.now(UTC) - timedelta(days=40),
    )

    # 22. A home with an electricity curve, a water meter and an earlier alert.
    home = person.household
    now = datetime.now(UTC)
    write_real_curve(home.meters.get(kind="electricity"), days=35, now=now)
    water = home.meters.filter(kind="water").first() or Meter.objects.create(
        number=f"W-{home.code}", account_number=home.code, household=home, kind="water"
    )
    Meter.objects.filter(pk=water.pk).update(interval_minutes=30)
    stamps = [now - timedelta(minutes=30 * i) for i in range(1, 48 * 3)]
    ReadingsStore(Path(settings.LIANXIN_HOME) / "readings").write(
        pl.DataFrame(
            {
                "meter": [water.number] * len(stamps),
                "ts": stamps,
                "value": [0.004 + 0.01 * (t.hour in (7, 19)) for t in stamps],
                "unit": ["m3"] * len(stamps),
            }
        ).with_columns(pl.col("ts").dt.replace_time_zone("UTC").dt.cast_time_unit("us"))
    )
    earlier_finding = Finding(
        kind="high_load",
        severity="warning",
        started_at=now - timedelta(hours=30),
        detected_at=now - timedelta(hours=29),
        household_id=home.code,
        reason_en="3.2 kW for 2 h.",
        reason_zh="连续 2 小时负荷 3.2 千瓦。",
    )
    [earlier] = apply_findings([earlier_finding], now=now - timedelta(hours=29))
    [current] = apply_findings(
        [
            Finding(
                kind="no_power",
                severity="critical",
                started_at=now - timedelta(hours=1),
                detected_at=now,
                household_id=home.code,
                reason_en="No power since 1 hour ago.",
                reason_zh="一小时前起无电。",
            )
        ]
    )

    for lang in ("zh-hans", "en"):
        ctx = chromium.new_context(locale=LOCALES[lang], viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        sign_in(page, base, "admin")
        page.goto(f"{base}/dispatch/audit/")
        page.fill("#audit-filters input[name=user]", "operator")
        page.fill("#audit-filters input[name=resident]", person.name)
        page.click("#audit-filters button[type=submit]")
        page.wait_for_load_state("networkidle")
        rows = page.locator("#audit-rows tbody tr").all_inner_texts()
        assert len(rows) == 1 and person.household.code in rows[0]
        assert page.input_value("#audit-filters input[name=resident]") == person.name
        today = datetime.now().date().isoformat()
        page.goto(f"{base}/dispatch/audit/?user=operator&since={today}")
        rows = page.locator("#audit-rows tbody tr").all_inner_texts()
        assert rows and not any(old.what in r for r in rows)
        shot(page, f"audit-filtered-{lang}")
        # A day range the wrong way round is a message, not a 500.
        response = page.goto(f"{base}/dispatch/audit/?since={today}&until=2000-01-01")
        assert response.status == 400
        assert _t(lang, "The first day is after the last.") in page.inner_text("main")

        page.goto(f"{base}/admin/care/carerecipient/{person.pk}/change/")
        form = page.locator("#content-main form").bounding_box()
        inline = page.locator(".inline-group").first
        box = inline.bounding_box()
        assert box["x"] + box["width"] <= form["x"] + form["width"] + 1
        shot(page, f"admin-care-recipient-{lang}")

        # 22. Water plotted on its own axis; this alert and the earlier one marked.
        page.goto(f"{base}/alerts/{current.pk}/")
        chart = (
            "const c = echarts.getInstanceByDom(document.getElementById('load-chart'));"
            " const o = c && c.getOption(); if (!o || !o.series) return null;"
        )
        page.wait_for_function(f"() => {{ {chart} return o.series.length === 4; }}", timeout=15_000)
        got = page.evaluate(
            f"() => {{ {chart} return {{names: o.series.map(s => s.name), axes: o.yAxis.length,"
            " water: o.series[3].data.length, axis: o.series[3].yAxisIndex,"
            " marks: o.series[2].markLine.data.map(m => [m.isThis, m.name])}; }"
        )
        assert _t(lang, "water (L/h)") in got["names"] and got["axes"] == 2
        assert got["water"] > 90 and got["axis"] == 1
        assert [this for this, _ in got["marks"]] == [True, False]
        assert _t(lang, KindChoices.HIGH_LOAD.label) in got["marks"][1][1]
        shot(page, f"case-chart-water-{lang}")
        # The 30-day view: hourly means, the band under them.
        page.click(".ranges button[data-range='30d']")
        page.wait_for_function(
            f"() => {{ {chart} return o.series[2].data.length > 500; }}", timeout=15_000
        )
        month = page.evaluate(
            f"() => {{ {chart} return [o.series[2].data.length, o.series[1].data.length]; }}"
        )
        assert 500 < month[0] <= 24 * 30 + 2 and month[1] > 500
        shot(page, f"case-chart-30d-{lang}")
        assert earlier.pk != current.pk
        wide = page.evaluate(
            "() => [...document.querySelectorAll('.inline-group, .inline-group *')]"
            ".filter(g => g.scrollWidth > g.clientWidth + 1)"
            ".map(g => g.id + '.' + g.className + ':' + g.scrollWidth + '>' + g.clientWidth)"
        )
        assert wide == []
        ctx.close()

    ctx = chromium.new_context()
    favicon = ctx.request.get(f"{base}/favicon.ico")
    assert favicon.status == 200 and favicon.headers["content-type"].startswith("image/")
    ctx.close()
