"""The duty room's side: channels in the admin (write-only secrets, a test message),
maintenance silences, the shift page and the live case endpoint."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from lianxin.alerts.models import Action
from lianxin.alerts.service import acknowledge, apply_findings
from lianxin.care.models import Household
from lianxin.notify.models import Channel, HandoverNote, Notification, Silence
from tests.alerts.helpers import NOW, enroll, finding, town
from tests.notify.helpers import at, staff_channels, work
from tests.notify.receivers import HTTPReceiver

pytestmark = pytest.mark.django_db


def login(client, username):
    user = get_user_model().objects.get(username=username)
    client.force_login(user)
    return user


def test_channel_secrets_are_write_only_and_a_test_message_goes_out(client, receiver):
    town()
    login(client, "admin")
    form = {
        "name": "值班群",
        "kind": "dingtalk",
        "audience": "duty",
        "enabled": "on",
        "language": "zh-hans",
        "url": receiver.url,
        "options": "{}",
        "token": "tok-1",
        "secret": "SEC-very-secret",
    }
    assert client.post("/admin/notify/channel/add/", form).status_code == 302
    ch = Channel.objects.get(name="值班群")
    page = client.get(f"/admin/notify/channel/{ch.pk}/change/").content.decode()
    assert "SEC-very-secret" not in page and "tok-1" not in page
    # Saving with the secret fields left empty keeps them.
    form |= {"token": "", "secret": "", "name": "值班群2"}
    assert client.post(f"/admin/notify/channel/{ch.pk}/change/", form).status_code == 302
    ch.refresh_from_db()
    assert (ch.name, ch.token, ch.secret) == ("值班群2", "tok-1", "SEC-very-secret")
    client.post(
        "/admin/notify/channel/",
        {"action": "send_test", "_selected_action": [ch.pk]},
    )
    (got,) = receiver.got
    assert got.query["access_token"] == "tok-1" and "sign" in got.query


def test_a_silence_holds_notifications_until_it_ends_but_not_a_critical_no_power(receiver):
    town()
    staff_channels(receiver.url)
    homes = [enroll(h) for h in Household.objects.filter(transformer_area__isnull=False)[:2]]
    author = get_user_model().objects.get(username="lead")
    Silence.objects.create(
        household=homes[0],
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW + timedelta(hours=1),
        reason="线路检修",
        author=author,
    )
    Silence.objects.create(
        household=homes[1],
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW + timedelta(hours=1),
        reason="线路检修",
        author=author,
    )
    held, loud = apply_findings(
        [finding(homes[0], kind="high_load", severity="warning"), finding(homes[1])], now=NOW
    )
    work(at(seconds=5), at(minutes=10))
    duty = [g.json["link"] for g in receiver.delivered() if g.path == "/duty"]
    assert all(link.endswith(f"/alerts/{loud.pk}/") for link in duty) and duty
    assert held.events.filter(action=Action.ESCALATION, data__held_until__isnull=False).exists()
    # The silence expires: what it held goes out (the alert was never acknowledged).
    work(at(minutes=61))
    assert any(g.json["link"].endswith(f"/alerts/{held.pk}/") for g in receiver.delivered())


def test_the_queue_shows_silences_and_names_a_critical_it_does_not_hide(client, receiver):
    from django.utils import timezone

    town()
    home = enroll(Household.objects.first())
    now = timezone.now()
    author = login(client, "operator")
    Silence.objects.create(
        transformer_area=home.transformer_area,
        starts_at=now,
        ends_at=now + timedelta(hours=2),
        reason="Feeder works",
        author=author,
    )
    apply_findings([finding(home, detected=now)], now=now)
    page = client.get("/alerts/").content.decode()
    assert "Feeder works" in page and "silence-loud" in page and home.code in page


def test_operators_add_and_end_silences_from_the_shift_page(client):
    town()
    login(client, "operator")
    area = Household.objects.first().transformer_area
    bad = client.post("/shift/silences", {"hours": "4", "reason": "x"}, follow=True)
    assert not Silence.objects.exists() and bad.status_code == 200
    client.post("/shift/silences", {"area": area.code, "hours": "4", "reason": "检修"})
    s = Silence.objects.get()
    assert s.transformer_area == area and s.author.username == "operator"
    client.post(f"/shift/silences/{s.pk}/end")
    s.refresh_from_db()
    from django.utils import timezone

    assert s.ends_at <= timezone.now()
    login(client, "field1")
    assert (
        client.post("/shift/silences", {"area": area.code, "hours": "1", "reason": "x"}).status_code
        == 403
    )


def test_the_shift_page_shows_what_the_next_operator_needs(client):
    from django.utils import timezone

    town()
    now = timezone.now()
    homes = [enroll(h) for h in Household.objects.all()[:2]]
    with HTTPReceiver(script=[404]) as r:
        staff_channels(r.url)
        a, b = apply_findings([finding(h, detected=now) for h in homes], now=now)
        work(now + timedelta(seconds=5))
    op = login(client, "operator")
    acknowledge(a, op)
    client.post("/shift/handover", {"text": "H00002 家属电话已打，等回电"})
    assert HandoverNote.objects.get().author == op
    page = client.get("/shift/?lang=en").content.decode()
    for needle in (f"/alerts/{a.pk}/", f"/alerts/{b.pk}/", "H00002 家属电话已打", "HTTP 404"):
        assert needle in page
    assert Notification.objects.filter(status="failed").count() >= 1


def test_the_case_page_polls_its_timeline(client, receiver):
    town()
    staff_channels(receiver.url)
    home = enroll(Household.objects.first())
    (alert,) = apply_findings([finding(home)], now=NOW)
    login(client, "operator")
    before = client.get(f"/shift/case/{alert.pk}.json").json()
    work(at(seconds=5))
    after = client.get(f"/shift/case/{alert.pk}.json").json()
    assert after["events"] > before["events"] and "ev-notified" in after["html"]
    assert 'data-live="/shift/case/' in client.get(f"/alerts/{alert.pk}/").content.decode()
