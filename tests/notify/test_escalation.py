"""Escalation with a clock the test moves: duty first, then the lead, then the family where
consent allows; acknowledging stops the chain; quiet hours hold all but critical."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.contrib.auth import get_user_model

from lianxin.alerts.models import Action
from lianxin.alerts.service import acknowledge, apply_findings
from lianxin.care.models import CareRecipient, Household
from lianxin.notify.models import EscalationPolicy, EscalationStep, Notification
from tests.alerts.helpers import NOW, enroll, finding, town
from tests.notify.helpers import at, family, people_channel, staff_channels, work

pytestmark = pytest.mark.django_db


def paths(receiver):
    return [g.path for g in receiver.delivered()]


@pytest.fixture
def home(receiver):
    town()
    staff_channels(receiver.url)
    people_channel(receiver.url, "sms")
    home = enroll(Household.objects.first())
    family(CareRecipient.objects.get(household=home, name="王秀英"))
    return home


def test_unacknowledged_critical_goes_duty_lead_family_then_reminds(receiver, home):
    (alert,) = apply_findings([finding(home)], now=NOW)
    work(at(seconds=5))
    assert paths(receiver) == ["/duty"]
    work(at(minutes=4))
    assert paths(receiver) == ["/duty"]
    work(at(minutes=5), at(minutes=5, seconds=5))
    assert paths(receiver) == ["/duty", "/lead"]
    work(at(minutes=15))
    assert paths(receiver)[2:] == ["/sms"]
    sms = receiver.delivered()[2].json
    assert sms["to"] == "13900000002"
    assert home.code not in sms["text"] and "王" not in sms["text"]  # no personal data
    # Reminders go to the staff reached so far, not to the family again.
    work(at(minutes=25))
    assert sorted(paths(receiver)[3:]) == ["/duty", "/lead"]
    steps = alert.events.filter(action=Action.ESCALATION, data__target__isnull=False)
    assert [(e.data["target"], e.data["repeat"]) for e in steps] == [
        ("duty", 0),
        ("lead", 0),
        ("contacts", 0),
        ("duty", 1),
        ("lead", 1),
    ]


def test_acknowledging_at_step_two_stops_step_three(receiver, home):
    (alert,) = apply_findings([finding(home)], now=NOW)
    work(at(seconds=5), at(minutes=5))
    assert paths(receiver) == ["/duty", "/lead"]
    operator = get_user_model().objects.get(username="operator")
    acknowledge(alert, operator)
    work(at(minutes=15), at(minutes=40), at(minutes=90))
    assert paths(receiver) == ["/duty", "/lead"]
    stopped = alert.events.filter(action=Action.ESCALATION, data__stopped="acknowledged")
    assert stopped.exists()


def test_the_condition_clearing_stops_the_chain_but_keeps_the_alert_in_the_queue(receiver, home):
    (alert,) = apply_findings([finding(home)], now=NOW)
    work(at(seconds=5))
    assert paths(receiver) == ["/duty"]
    # Power is back at minute 3: no lead at 5, no family at 15, no reminders after.
    apply_findings([finding(home, event="resolved", detected=at(minutes=3))], now=at(minutes=3))
    work(at(minutes=5), at(minutes=15), at(minutes=40), at(minutes=90))
    assert paths(receiver) == ["/duty"]
    alert.refresh_from_db()
    assert alert.status == "open" and alert.condition_cleared_at is not None
    assert alert.events.filter(action=Action.ESCALATION, data__stopped="condition cleared").exists()


def test_no_family_notification_without_family_consent(receiver):
    town()
    staff_channels(receiver.url)
    people_channel(receiver.url, "sms")
    home = enroll(Household.objects.first())
    person = CareRecipient.objects.get(household=home, name="王秀英")
    contact = family(person)
    person.consents.get(scope="family").withdraw(by="本人", at=NOW - timedelta(days=1))
    assert contact.pk
    apply_findings([finding(home)], now=NOW)
    work(at(seconds=5), at(minutes=5), at(minutes=15), at(minutes=16))
    assert "/sms" not in paths(receiver)


def test_a_team_policy_from_the_admin_wins_and_a_running_chain_keeps_its_copy(receiver, home):
    policy = EscalationPolicy.objects.create(name="high load: lead at once", kind="high_load")
    EscalationStep.objects.create(policy=policy, order=1, wait_minutes=0, target="lead")
    EscalationStep.objects.create(policy=policy, order=2, wait_minutes=3, target="duty")
    (alert,) = apply_findings([finding(home, kind="high_load", severity="warning")], now=NOW)
    work(at(seconds=5))
    assert paths(receiver) == ["/lead"]
    policy.steps.update(wait_minutes=60)  # editing the policy does not change this alert
    work(at(minutes=3))
    assert paths(receiver) == ["/lead", "/duty"]
    assert alert.escalation.policy_name == "high load: lead at once"


def test_quiet_hours_hold_a_warning_but_not_a_critical(receiver):
    town()
    staff_channels(receiver.url)
    people_channel(receiver.url, "sms", quiet_start=time(22, 0), quiet_end=time(7, 0))
    homes = [enroll(h) for h in Household.objects.all()[:2]]
    for h in homes:
        family(
            CareRecipient.objects.get(household=h, name="王秀英"), phone=f"1390000000{h.pk % 10}"
        )
    night = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # 02:00 in Asia/Shanghai
    policy = EscalationPolicy.objects.create(name="family first")
    EscalationStep.objects.create(policy=policy, order=1, wait_minutes=0, target="contacts")
    warn, crit = apply_findings(
        [
            finding(homes[0], kind="high_load", severity="warning", detected=night),
            finding(homes[1], kind="no_power", severity="critical", detected=night),
        ],
        now=night,
    )
    work(night + timedelta(seconds=5), night + timedelta(hours=2))
    sent = {g.json["to"] for g in receiver.delivered()}
    crit_to = Notification.objects.get(alert=crit).address
    warn_to = Notification.objects.get(alert=warn).address
    assert sent == {crit_to}
    held = warn.events.filter(action=Action.ESCALATION, data__held_until__isnull=False)
    assert held.exists()
    # 07:00 local: the warning goes out, if still nobody has taken it.
    work(datetime(2026, 11, 27, 23, 0, tzinfo=UTC))
    assert {g.json["to"] for g in receiver.delivered()} == {crit_to, warn_to}


def test_a_rise_in_severity_restarts_the_chain_with_the_faster_policy(receiver, home):
    """A warning's chain waits 15 min for the lead; when the same alert turns critical at +2 min
    the chain starts again: the duty room hears of it at once as critical, and the lead after
    the critical policy's 5 min, not the warning's 15."""
    (alert,) = apply_findings([finding(home, severity="warning")], now=NOW)
    work(at(seconds=5))
    assert paths(receiver) == ["/duty"]
    # The engine's next finding for the same home and kind, now critical.
    later = finding(home, severity="critical", started=at(minutes=-50), detected=at(minutes=2))
    apply_findings([later], now=at(minutes=2))
    work(at(minutes=2, seconds=5))
    assert paths(receiver) == ["/duty", "/duty"]
    assert receiver.delivered()[1].json["severity"] == "critical"
    work(at(minutes=6))
    assert paths(receiver) == ["/duty", "/duty"]  # the warning's lead step is gone
    work(at(minutes=7), at(minutes=7, seconds=5))
    assert paths(receiver) == ["/duty", "/duty", "/lead"]
    restarted = alert.events.filter(action=Action.ESCALATION, data__restarted="critical")
    assert restarted.count() == 1


def test_a_rise_in_severity_of_an_acknowledged_alert_does_not_page_again(receiver, home):
    (alert,) = apply_findings([finding(home, severity="warning")], now=NOW)
    work(at(seconds=5))
    acknowledge(alert, get_user_model().objects.get(username="operator"))
    later = finding(home, severity="critical", started=at(minutes=-50), detected=at(minutes=2))
    apply_findings([later], now=at(minutes=2))
    assert alert.events.filter(action=Action.ESCALATED).exists()
    work(at(minutes=2, seconds=5), at(minutes=30))
    assert paths(receiver) == ["/duty"]


def test_the_roster_decides_which_duty_operator_is_texted(receiver):
    """Two duty operators in the team; the roster puts one on duty for the night. Step 1 texts
    only her; when nobody is rostered, every duty operator is texted, as before a roster."""
    from django.contrib.auth.models import Group

    from lianxin.care.models import Membership
    from lianxin.notify.models import Channel, RosterShift

    town()
    home = enroll(Household.objects.first())
    team = CareRecipient.objects.filter(household=home, team__isnull=False).first().team
    User = get_user_model()
    duty = Group.objects.get(name="duty_operator")
    phones = {}
    for name, phone in (("night", "13500000001"), ("day", "13500000002")):
        user = User.objects.create(username=name)
        user.groups.add(duty)
        Membership.objects.update_or_create(team=team, user=user, defaults={"phone": phone})
        phones[name] = (user, phone)
    Membership.objects.filter(team=team).exclude(user__username__in=["night", "day"]).update(
        phone=""
    )
    Channel.objects.create(name="sms", kind="sms", url=receiver.url + "/sms", audience="duty")
    RosterShift.objects.create(
        team=team, user=phones["night"][0], starts_at=at(minutes=-60), ends_at=at(minutes=60)
    )
    apply_findings([finding(home)], now=NOW)
    work(at(seconds=5))
    assert [g.json["to"] for g in receiver.delivered()] == ["13500000001"]

    RosterShift.objects.all().delete()
    later = finding(home, kind="inactivity", severity="critical", detected=at(minutes=2))
    apply_findings([later], now=at(minutes=2))
    work(at(minutes=2, seconds=5))
    assert sorted(g.json["to"] for g in receiver.delivered()[1:]) == ["13500000001", "13500000002"]
