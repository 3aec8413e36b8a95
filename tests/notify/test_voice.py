"""Voice calls answered by keypress: the call goes to a real loopback provider, which reports
the key pressed to the call's callback URL on a real Lianxin server (live_server). The resident
presses 1 for "I am fine"; a duty operator presses 1 to acknowledge. Callbacks are signed with
the channel's secret, single use and refused when forged, unsigned or spent."""

import json
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from lianxin.alerts.models import Action, Alert, Status
from lianxin.alerts.service import apply_findings
from lianxin.care.models import CareRecipient, Household, Membership
from lianxin.notify.channels.webhook import sign
from lianxin.notify.models import Channel, PersonPreference
from tests.alerts.helpers import enroll, finding, town
from tests.notify.helpers import staff_channels, work

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "voice-secret"


def press(callback: str, digits, secret=SECRET, form=False) -> tuple[int, dict]:
    """The provider's side: POST the pressed key to the call's callback URL."""
    if form:
        body, ctype = f"Digits={digits}".encode(), "application/x-www-form-urlencoded"
    else:
        body, ctype = json.dumps({"digits": digits}).encode(), "application/json"
    ts = str(int(time.time()))
    headers = {"Content-Type": ctype, "X-Lianxin-Timestamp": ts}
    if secret:
        headers["X-Lianxin-Signature"] = sign(secret, ts, body)
    request = urllib.request.Request(callback, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def calls(receiver, to):
    return [g.json for g in receiver.delivered() if g.path == "/voice" and g.json["to"] == to]


@pytest.fixture
def voice(receiver, live_server, monkeypatch):
    monkeypatch.setenv("LIANXIN_BASE_URL", live_server.url)
    town()
    staff_channels(receiver.url)
    Channel.objects.create(
        name="voice",
        kind="voice",
        url=receiver.url + "/voice",
        audience="people",
        secret=SECRET,
    )
    home = enroll(Household.objects.first())
    person = CareRecipient.objects.get(household=home, name="王秀英")
    person.phone = "13700000003"
    person.save()
    PersonPreference.objects.create(
        care_recipient=person, ask_resident_first=True, reach_by="voice"
    )
    return home


def inactivity(home):
    now = timezone.now()
    (alert,) = apply_findings(
        [finding(home, "inactivity", "warning", detected=now, started=now - timedelta(hours=3))],
        now=now,
    )
    return alert, now


def test_the_resident_presses_1_and_the_alert_resolves_as_resident_fine(receiver, voice):
    alert, now = inactivity(voice)
    work(now + timedelta(seconds=1))
    (call,) = calls(receiver, "13700000003")
    assert "/n/v/" in call["callback"]
    assert "http" not in call["text"] and "王" not in call["text"]  # said aloud, no link

    callback = call["callback"]
    assert press(callback, "1", secret=None)[0] == 403  # unsigned
    assert press(callback, "1", secret="wrong")[0] == 403
    assert press(callback.replace("/n/v/", "/n/v/x"), "1")[0] == 404  # forged
    assert press(callback, "7") == (200, {"result": "ignored"})  # recorded, link still usable
    alert.refresh_from_db()
    assert alert.status == Status.OPEN

    assert press(callback, "1", form=True) == (200, {"result": "resident_fine"})
    alert.refresh_from_db()
    assert (alert.status, alert.outcome) == (Status.RESOLVED, "resident_fine")
    done = alert.events.get(action=Action.RESOLVED)
    assert done.data["source"] == "resident" and done.data["via"] == "voice"
    assert press(callback, "1") == (410, {"error": "used"})  # spent: a replay does nothing
    # The duty room is not called for a resident who said they are fine.
    work(now + timedelta(minutes=20))
    assert not [g for g in receiver.delivered() if g.path == "/duty"]


def test_the_resident_presses_2_and_the_duty_room_is_called_at_once(receiver, voice):
    alert, now = inactivity(voice)
    work(now + timedelta(seconds=1))
    (call,) = calls(receiver, "13700000003")
    assert press(call["callback"], "2") == (200, {"result": "help"})
    work(now + timedelta(seconds=2))  # not the 15 min the resident would have had
    assert [g.path for g in receiver.delivered() if g.path == "/duty"] == ["/duty"]
    alert.refresh_from_db()
    assert alert.status == Status.OPEN
    assert alert.events.filter(data__voice="help").exists()


def test_a_duty_operator_presses_1_to_acknowledge(receiver, live_server, monkeypatch):
    monkeypatch.setenv("LIANXIN_BASE_URL", live_server.url)
    town()
    Channel.objects.create(name="duty-voice", kind="voice", url=receiver.url + "/voice")
    operator = get_user_model().objects.get(username="operator")
    Membership.objects.filter(user=operator).update(phone="13600000006")
    home = enroll(Household.objects.first())
    (alert,) = apply_findings([finding(home, detected=timezone.now())], now=timezone.now())
    work(timezone.now() + timedelta(seconds=1))
    (call,) = calls(receiver, "13600000006")
    # No secret on this channel: the signed single-use URL alone is the credential.
    assert press(call["callback"], "1", secret=None) == (200, {"result": "acknowledged"})
    alert = Alert.objects.get(pk=alert.pk)
    assert (alert.status, alert.holder) == (Status.ACKNOWLEDGED, operator)
    assert alert.events.filter(action=Action.ACKNOWLEDGED, actor=operator).exists()
