"""The resident's "I am fine" link on a phone-sized Chromium (confirmed, then reused, forged,
expired: a clear page and nothing changed), the live case timeline, and the shift page.

Screenshots go to test-artifacts/: resident-fine-*.png, link-refused-*.png, shift-*.png.
"""

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from lianxin.alerts.models import Alert, Status
from lianxin.alerts.service import apply_findings
from lianxin.care.models import CareRecipient, Consent
from lianxin.notify import service, worker
from lianxin.notify.models import Channel, OneTimeLink, PersonPreference
from tests.alerts.helpers import finding
from tests.browser.test_duty_room import LOCALES, chromium, shot, sign_in, town  # noqa: F401
from tests.notify.helpers import GATEWAY_BODY
from tests.notify.receivers import HTTPReceiver

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _base_url_restored(monkeypatch):
    # opted_in() points links at the live server; put the environment back after each test, so
    # later tests (and the processes they start) never inherit this test's server address.
    monkeypatch.delenv("LIANXIN_BASE_URL", raising=False)


@pytest.fixture
def receiver():
    with HTTPReceiver() as r:
        yield r


def opted_in(person, live_url, receiver, lang):
    os.environ["LIANXIN_BASE_URL"] = live_url
    Channel.objects.create(name="值班群", kind="webhook", url=receiver.url + "/duty", secret="k")
    Channel.objects.create(
        name="短信", kind="sms", audience="people", url=receiver.url + "/sms",
        options={"body": GATEWAY_BODY},
    )  # fmt: skip
    PersonPreference.objects.create(
        care_recipient=person, ask_resident_first=True, resident_language=lang
    )
    assert Consent.objects.filter(care_recipient=person, scope="monitoring").exists()


def inactivity(home):
    now = timezone.now()
    (alert,) = apply_findings(
        [finding(home, kind="inactivity", severity="warning", detected=now,
                 started=now - timedelta(hours=4))],
        now=now,
    )  # fmt: skip
    return alert, now


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_the_resident_confirms_on_a_phone_and_the_link_cannot_be_used_again(
    chromium, live_server, town, receiver, lang  # noqa: F811 - fixtures from test_duty_room
):
    person = town
    opted_in(person, live_server.url, receiver, lang)
    alert, now = inactivity(person.household)
    worker.run_once(now + timedelta(seconds=5))
    (sms,) = [g.json for g in receiver.delivered() if g.path == "/sms"]
    link = re.search(r"http://\S+", sms["text"]).group(0)
    assert person.name not in sms["text"] and person.household.code not in link

    phone = chromium.new_context(locale=LOCALES[lang], viewport={"width": 390, "height": 780})
    page = phone.new_page()
    page.goto(link)
    assert Alert.objects.get(pk=alert.pk).status == Status.OPEN  # opening the link changes nothing
    shot(page, f"resident-ask-{lang}")
    page.click("#fine")
    page.wait_for_selector("#done")
    shot(page, f"resident-fine-{lang}")
    alert.refresh_from_db()
    assert (alert.status, alert.outcome) == (Status.RESOLVED, "resident_fine")
    events = alert.events.count()

    page.goto(link)  # reused
    page.wait_for_selector("#refused")
    shot(page, f"link-refused-{lang}")
    page.goto(link[:-4] + "AAAA")  # forged signature
    page.wait_for_selector("#refused")
    # Expired: a second alert's link, past its time.
    other = CareRecipient.objects.exclude(household=person.household).first()
    PersonPreference.objects.create(care_recipient=other, ask_resident_first=True)
    alert2, _now = inactivity(other.household)
    expired = service.make_link(OneTimeLink.Purpose.FINE, alert2, timezone.now())
    OneTimeLink.objects.filter(alert=alert2).update(expires_at=timezone.now())
    page.goto(expired.replace("http://127.0.0.1:8000", live_server.url))
    page.wait_for_selector("#refused")
    if page.locator("#fine").count():
        page.click("#fine")
    assert Alert.objects.get(pk=alert2.pk).status == Status.OPEN
    assert alert.events.count() == events
    phone.close()


def test_the_case_page_refreshes_live_and_the_shift_page(
    chromium, live_server, town, receiver  # noqa: F811 - fixtures from test_duty_room
):
    person = town
    opted_in(person, live_server.url, receiver, "zh-hans")
    Channel.objects.create(name="坏掉的群", kind="webhook", url=receiver.url[:-1] + "1/x")
    alert, now = inactivity(person.household)
    ctx = chromium.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    sign_in(page, live_server.url, "operator")
    page.goto(f"{live_server.url}/alerts/{alert.pk}/")
    page.evaluate("window.__sameDocument = true")
    assert page.locator("#timeline li.ev-notified").count() == 0
    worker.run_once(now + timedelta(seconds=5))  # the resident's SMS goes out
    page.wait_for_selector("#timeline li.ev-notified", timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True  # no reload
    # Nobody answers: the duty room is told, and the queue says the resident did not answer.
    worker.run_once(now + timedelta(minutes=16))
    page.goto(f"{live_server.url}/alerts/")
    page.wait_for_selector(".resident-unanswered")
    page.goto(f"{live_server.url}/shift/")
    page.fill("#shift-notes textarea", "杜大爷家已打过两次电话无人接，下一班请十点前再打一次。")
    page.click("#shift-notes button[type=submit]")
    page.wait_for_selector("#shift-notes .note")
    assert f"/alerts/{alert.pk}/" in page.inner_html("#shift-open")
    assert (
        "坏掉的群" in page.inner_text("#shift-failed")
        or page.locator("#shift-failed tbody tr").count() >= 1
    )
    shot(page, "shift-zh-hans")
    ctx.close()
