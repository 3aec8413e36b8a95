"""The resident's "I am fine" and the family's "she is with us": links that are signed, single
use, expiring, and carry no personal data; a refused link changes nothing."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from lianxin.alerts.models import Action, Alert, AwayPeriod, Status
from lianxin.alerts.service import apply_findings
from lianxin.care.models import CareRecipient, Household
from lianxin.notify.models import Escalation, Notification, OneTimeLink, PersonPreference
from tests.alerts.helpers import enroll, finding, town
from tests.notify.helpers import family, people_channel, staff_channels, work

pytestmark = pytest.mark.django_db


@pytest.fixture
def inactive(receiver):
    """An opted-in resident whose home shows no activity now (wall clock: links expire by it)."""
    town()
    staff_channels(receiver.url)
    people_channel(receiver.url, "sms")
    home = enroll(Household.objects.first())
    person = CareRecipient.objects.get(household=home, name="王秀英")
    person.phone = "13700000003"
    person.save()
    PersonPreference.objects.create(care_recipient=person, ask_resident_first=True)
    contact = family(person)
    now = timezone.now()
    (alert,) = apply_findings(
        [
            finding(
                home,
                kind="inactivity",
                severity="warning",
                detected=now,
                started=now - timedelta(hours=3),
            )
        ],
        now=now,
    )
    return {"alert": alert, "home": home, "person": person, "contact": contact, "now": now}


def sms_link(receiver, to):
    (got,) = [g for g in receiver.delivered() if g.path == "/sms" and g.json["to"] == to]
    text = got.json["text"]
    return text, re.search(r"http://\S+", text).group(0).split("127.0.0.1:8000", 1)[1]


def test_the_resident_is_asked_first_and_confirms(client, receiver, inactive):
    now = inactive["now"]
    work(now + timedelta(seconds=5))
    assert [g.path for g in receiver.delivered()] == ["/sms"]  # not the duty room yet
    text, path = sms_link(receiver, "13700000003")
    # No personal data in the message or the link.
    for private in ("王秀英", inactive["home"].code, inactive["home"].address, "13700000003"):
        assert private not in text
    page = client.get(path)
    assert page.status_code == 200 and "<form" in page.content.decode()
    assert Alert.objects.get(pk=inactive["alert"].pk).status == Status.OPEN  # GET changes nothing
    done = client.post(path)
    assert done.status_code == 200
    alert = Alert.objects.get(pk=inactive["alert"].pk)
    assert (alert.status, alert.outcome) == (Status.RESOLVED, "resident_fine")
    ev = alert.events.get(action=Action.RESOLVED)
    assert ev.actor is None and ev.data["source"] == "resident"
    # The chain stopped: nobody else is called.
    work(now + timedelta(minutes=20), now + timedelta(minutes=60))
    assert [g.path for g in receiver.delivered()] == ["/sms"]
    # Reused: a clear page, nothing changed.
    again = client.post(path)
    assert again.status_code == 410 and 'id="refused"' in again.content.decode()
    assert Alert.objects.get(pk=alert.pk).events.count() == alert.events.count()


def test_no_answer_escalates_and_the_queue_says_so(client, receiver, inactive):
    now = inactive["now"]
    work(now + timedelta(seconds=5), now + timedelta(minutes=15, seconds=1))
    assert [g.path for g in receiver.delivered()] == ["/sms", "/duty"]
    assert Escalation.objects.get(alert=inactive["alert"]).resident_unanswered
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="operator"))
    rows = client.get("/alerts/queue.json?lang=en").json()["html"]
    assert "resident-unanswered" in rows


@pytest.mark.parametrize("why", ["expired", "forged", "tampered"])
def test_refused_links_change_nothing(client, receiver, inactive, why):
    work(inactive["now"] + timedelta(seconds=5))
    _text, path = sms_link(receiver, "13700000003")
    if why == "expired":
        OneTimeLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    elif why == "forged":
        path = "/n/f/" + "A" * 32 + ":" + "B" * 43
    else:
        path = path[:-3] + ("xyz" if not path.endswith("xyz") else "abc")
    response = client.post(path)
    assert response.status_code == (410 if why == "expired" else 404)
    assert Alert.objects.get(pk=inactive["alert"].pk).status == Status.OPEN


def test_the_family_sets_an_away_period_without_an_account(client, receiver, inactive):
    now = inactive["now"]
    work(now + timedelta(seconds=5), now + timedelta(minutes=15, seconds=1))
    # Warning inactivity: duty, then lead after 15 min, then the family after 30 more.
    work(now + timedelta(minutes=30, seconds=2), now + timedelta(minutes=60, seconds=3))
    text, path = sms_link(receiver, "13900000002")
    assert "王" not in text and inactive["home"].code not in text
    assert client.get(path).status_code == 200
    bad = client.post(path, {"until": "2020-01-01"})
    assert bad.status_code == 400 and not AwayPeriod.objects.exists()
    until = timezone.localdate() + timedelta(days=3)
    done = client.post(path, {"until": until.isoformat(), "note": "住在女儿家"})
    assert done.status_code == 200
    away = AwayPeriod.objects.get(household=inactive["home"])
    assert "王芳" in away.comment and "住在女儿家" in away.comment
    assert away.author.username == "family-link"
    assert timezone.localtime(away.ends_at).date() == until
    alert = Alert.objects.get(pk=inactive["alert"].pk)
    assert alert.status == Status.SILENCED
    assert client.post(path, {"until": until.isoformat()}).status_code == 410
    assert AwayPeriod.objects.count() == 1
    # Silenced: what had not gone out yet is dropped.
    assert not Notification.objects.filter(alert=alert, status="pending").exists()
