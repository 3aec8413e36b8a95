from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import translation

from lianxin.alerts import service
from lianxin.alerts.models import (
    Alert,
    AlertEvent,
    AppliedFinding,
    Outcome,
    Status,
    TransitionError,
)
from lianxin.care.models import CareRecipient, Household
from lianxin.dispatch.service import welfare_list
from tests.alerts.helpers import NOW, cared_home, enroll, finding, outage, town

pytestmark = pytest.mark.django_db


@pytest.fixture
def home():
    town()
    return cared_home()


@pytest.fixture
def operator():
    return get_user_model().objects.get(username="operator")


def test_a_finding_opens_one_alert_and_applying_it_again_changes_nothing(home):
    f = finding(home)
    [alert] = service.apply_findings([f], now=NOW)
    assert (alert.status, alert.kind, alert.household) == (Status.OPEN, "no_power", home)
    assert alert.severity_rank == 2 and alert.reason_zh == f.reason_zh
    assert service.apply_findings([f, f], now=NOW) == []
    assert Alert.objects.count() == 1
    assert list(alert.events.values_list("action", flat=True)) == ["opened"]


def test_a_new_finding_of_the_same_home_and_kind_updates_the_open_alert(home):
    [first] = service.apply_findings([finding(home, "inactivity", "warning")], now=NOW)
    later = finding(
        home,
        "inactivity",
        "critical",
        started=NOW - timedelta(minutes=20),
        detected=NOW + timedelta(hours=1),
        reason_en="still nothing",
    )
    [again] = service.apply_findings([later], now=NOW + timedelta(hours=1))
    assert again.pk == first.pk
    again.refresh_from_db()
    assert (again.severity, again.reason_en) == ("critical", "still nothing")
    assert again.last_detected_at == NOW + timedelta(hours=1)
    assert list(again.events.values_list("action", flat=True)) == ["opened", "escalated"]
    assert Alert.objects.filter(household=home).count() == 1


def test_the_database_allows_one_open_alert_per_key(home):
    [alert] = service.apply_findings([finding(home)], now=NOW)
    clone = Alert(
        kind=alert.kind,
        severity=alert.severity,
        key=alert.key,
        household=home,
        reason_en="x",
        reason_zh="x",
        started_at=NOW,
        detected_at=NOW,
        last_detected_at=NOW,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        clone.save()


def test_a_resolved_finding_clears_the_condition_but_a_person_closes_the_case(home, operator):
    raised = finding(home)
    [alert] = service.apply_findings([raised], now=NOW)
    cleared = finding(home, event="resolved", detected=NOW + timedelta(minutes=30))
    assert cleared.finding_id == raised.finding_id
    service.apply_findings([cleared], now=NOW + timedelta(minutes=30))
    alert.refresh_from_db()
    assert alert.status == Status.OPEN
    assert alert.condition_cleared_at == NOW + timedelta(minutes=30)
    service.resolve(alert, operator, Outcome.FAULT_REPAIRED, "fuse")
    alert.refresh_from_db()
    assert (alert.status, alert.outcome, alert.holder) == (
        Status.RESOLVED,
        "fault_repaired",
        operator,
    )
    # The next occurrence is a new case.
    [new] = service.apply_findings([finding(home, started=NOW + timedelta(hours=2))])
    assert new.pk != alert.pk and new.status == Status.OPEN


def test_a_finding_about_an_unknown_home_is_skipped_naming_it_and_the_others_go_on(home, caplog):
    bad = finding(home)
    bad = type(bad)(**{**bad.__dict__, "household_id": "H99999", "finding_id": "gone"})
    skipped = []
    touched = service.apply_findings([bad, finding(home)], skipped=skipped)
    assert [a.household for a in touched] == [home]
    assert [(f.finding_id, "H99999" in why) for f, why in skipped] == [("gone", True)]
    assert "H99999" in caplog.text and "skipped" in caplog.text
    assert Alert.objects.count() == 1


def test_a_household_code_is_fixed_once_saved_and_keeps_the_rule(home):
    home.address = "东坡区新地址8号"
    home.save()  # the address may change
    home.code = "H-RENAMED"
    with translation.override("en"), pytest.raises(ValidationError, match="cannot change"):
        home.save()
    for bad in ("A/B", "../../etc", "ACC10?x=1#f", "H\x00", "H 1", "a..b", ".h", ""):
        with pytest.raises(ValidationError):
            Household(code=bad, address="x").save()
    Household(code="张家-01.b_2", address="x").save()


def test_no_alert_for_a_home_without_consent_to_monitoring(home):
    stranger = Household.objects.filter(care_recipients__isnull=True).first()
    assert service.apply_findings([finding(stranger)], now=NOW) == []
    assert AppliedFinding.objects.filter(alert__isnull=True).count() == 1

    person = home.care_recipients.get()
    person.active_consents().get().withdraw(by="本人", at=NOW - timedelta(days=1))
    assert service.apply_findings([finding(home)], now=NOW) == []
    assert Alert.objects.count() == 0


def test_the_care_database_keeps_no_reasons_or_evidence_about_homes_without_consent(home):
    """The engine watches every home of a transformer area, but what it inferred about the
    life of someone who did not agree to be watched is not kept: only what names the finding.
    The same whether recorded with a burst or one by one; a watched home's finding is kept
    whole."""
    strangers = list(Household.objects.filter(care_recipients__isnull=True)[:3])
    ev = {"quiet_hours": 5.0, "last_activity": "07:10"}
    burst = [finding(h, kind="inactivity", severity="warning", evidence=ev) for h in strangers]
    alone = finding(strangers[0], kind="high_load", severity="warning", evidence=ev)
    watched = finding(home, kind="inactivity", severity="warning", evidence=ev)
    service.apply_findings(burst, now=NOW)
    service.apply_findings([alone, watched], now=NOW)
    kept = {a.finding_id: a.finding for a in AppliedFinding.objects.all()}
    assert len(kept) == 5
    for f in [*burst, alone]:
        assert kept[f.finding_id] == {
            "kind": str(f.kind),
            "severity": "warning",
            "started_at": f.started_at.isoformat(),
            "detected_at": f.detected_at.isoformat(),
            "household_id": f.household_id,
            "event": "raised",
            "finding_id": f.finding_id,
        }
    assert kept[watched.finding_id] == watched.to_dict()
    assert kept[watched.finding_id]["evidence"] == ev


def test_a_burst_about_homes_without_consent_is_recorded_in_one_insert_as_one_by_one(
    home, django_assert_max_num_queries
):
    """Most findings at a million homes are about homes nobody enrolled: recorded as applied
    with no alert, in a few queries for the whole burst; a clear of an alert that such a home
    still has (raised before its consent was withdrawn) clears it as before."""
    strangers = list(Household.objects.filter(care_recipients__isnull=True))
    raised = [finding(h, kind="inactivity", severity="warning") for h in strangers]
    cleared = [
        finding(h, kind="inactivity", severity="warning", event="resolved") for h in strangers
    ]
    [alert] = service.apply_findings([finding(home)], now=NOW)
    home.care_recipients.get().active_consents().get().withdraw(by="本人", at=NOW)
    burst = raised + cleared + [finding(home, event="resolved")] + raised[:3]
    with django_assert_max_num_queries(40):  # not per finding: 2 × len(strangers) + 1 of them
        assert service.apply_findings(burst, now=NOW) == [alert]
    alert.refresh_from_db()
    assert alert.condition_cleared_at == NOW  # cleared one by one, as before
    rows = AppliedFinding.objects.filter(alert__isnull=True)
    assert rows.count() == 2 * len(strangers)
    assert rows.first().finding["household_id"] in {h.code for h in strangers}
    assert service.apply_findings(burst, now=NOW) == []  # applied once
    assert AppliedFinding.objects.count() == 2 * len(strangers) + 2
    # A burst half of which was recorded before (a step retried after the database failed
    # between its transactions): the new half recorded, the old rows as they were.
    later = [finding(h, kind="inactivity", severity="warning", started=NOW) for h in strangers[:5]]
    before = {r.pk: (r.finding_id, r.applied_at) for r in AppliedFinding.objects.all()}
    step = NOW + timedelta(hours=1)
    assert service.apply_findings(raised[:5] + later, now=step) == []
    after = {r.pk: (r.finding_id, r.applied_at) for r in AppliedFinding.objects.all()}
    assert {pk: after[pk] for pk in before} == before
    new = AppliedFinding.objects.exclude(pk__in=before)
    assert sorted(new.values_list("finding_id", flat=True)) == sorted(f.finding_id for f in later)
    assert {r.applied_at for r in new} == {step}


def test_a_grid_outage_inhibits_the_homes_inside_and_lists_them_for_welfare_calls(home, operator):
    area = home.transformer_area
    inside = list(Household.objects.filter(transformer_area=area))
    neighbour = enroll(next(h for h in inside if h != home))
    elsewhere = enroll(Household.objects.exclude(transformer_area=area).first())
    [own, far] = service.apply_findings([finding(home), finding(elsewhere)], now=NOW)

    [grid] = service.apply_findings([outage(area, inside)], now=NOW)
    own.refresh_from_db()
    far.refresh_from_db()
    assert (own.status, own.parent) == (Status.INHIBITED, grid)
    assert far.status == Status.OPEN
    # A later alarm from inside the outage is inhibited as it opens.
    [late] = service.apply_findings([finding(neighbour, "inactivity", "warning")], now=NOW)
    assert late.status == Status.INHIBITED
    assert list(service.queue().values_list("pk", flat=True)) == [
        far.pk,
        grid.pk,
    ]  # worst, then oldest

    rows = welfare_list(grid)
    enrolled = CareRecipient.objects.filter(household__in=inside)
    assert {r["person"].pk for r in rows} == set(enrolled.values_list("pk", flat=True))
    assert rows[0]["person"].household == home and rows[0]["alarm"]
    years = [r["person"].birth_year for r in rows if not r["alarm"]]
    assert years == sorted(years)

    # Power comes back: the neighbour's condition cleared, this home still has none.
    service.apply_findings(
        [
            finding(neighbour, "inactivity", "warning", event="resolved"),
            outage(area, inside, event="resolved"),
        ],
        now=NOW + timedelta(hours=1),
    )
    own.refresh_from_db()
    late.refresh_from_db()
    assert own.status == Status.OPEN
    assert late.status == Status.INHIBITED
    service.resolve(grid, operator, Outcome.FAULT_REPAIRED)
    late.refresh_from_db()
    assert (late.status, late.outcome) == (Status.RESOLVED, "fault_repaired")


def test_an_away_period_silences_inactivity_for_that_home_and_then_lets_it_back(home, operator):
    from django.utils import timezone

    now = timezone.now()
    [idle] = service.apply_findings([finding(home, "inactivity", "warning")])
    away = service.add_away_period(
        home, operator, now - timedelta(hours=1), now + timedelta(days=3), "staying with daughter"
    )
    idle.refresh_from_db()
    assert idle.status == Status.SILENCED
    assert idle.events.last().note == "staying with daughter"
    # No power is an emergency even in an empty home: not silenced.
    [power] = service.apply_findings([finding(home)])
    assert power.status == Status.OPEN
    service.end_away_period(away, operator)
    idle.refresh_from_db()
    assert idle.status == Status.OPEN
    assert idle.events.last().action == "released"


def test_an_inactivity_finding_during_an_away_period_opens_silenced(home, operator):
    from django.utils import timezone

    now = timezone.now()
    service.add_away_period(
        home,
        operator,
        now - timedelta(hours=1),
        now + timedelta(hours=2),
        "at the hospital for a check-up",
    )
    [idle] = service.apply_findings([finding(home, "inactivity", "warning")], now=now)
    assert idle.status == Status.SILENCED
    service.release_expired_silences(now + timedelta(hours=3))
    idle.refresh_from_db()
    assert idle.status == Status.OPEN


def test_away_period_needs_an_end_after_its_start_and_a_reason(home, operator):
    with pytest.raises(TransitionError):
        service.add_away_period(home, operator, NOW, NOW - timedelta(hours=1), "x")
    with pytest.raises(TransitionError):
        service.add_away_period(home, operator, NOW, NOW + timedelta(hours=1), "  ")


def test_the_transition_table_is_enforced(home, operator):
    [alert] = service.apply_findings([finding(home)], now=NOW)
    service.resolve(alert, operator, Outcome.FALSE_ALARM)
    alert.refresh_from_db()
    with pytest.raises(TransitionError):
        service.acknowledge(alert, operator)
    with pytest.raises(TransitionError):
        service.resolve(alert, operator, Outcome.FALSE_ALARM)
    with pytest.raises(TransitionError):
        service.resolve(alert, operator, "solved-itself")


def test_alert_events_are_append_only(home):
    [alert] = service.apply_findings([finding(home)], now=NOW)
    event = alert.events.get()
    event.note = "rewritten"
    with pytest.raises(ValidationError):
        event.save()
    with pytest.raises(ValidationError):
        event.delete()
    assert AlertEvent.objects.get().note == ""


def test_response_times_are_read_from_the_event_log(home, operator):
    [alert] = service.apply_findings([finding(home)])
    service.acknowledge(alert, operator)
    service.resolve(alert, operator, Outcome.RESIDENT_FINE)
    steps = dict(service.response_times(alert))
    assert set(steps) == {"acknowledged", "resolved"}
    assert timedelta(0) <= steps["acknowledged"] <= steps["resolved"]


def test_the_queue_puts_a_condition_still_going_on_before_one_that_cleared(home):
    from lianxin.care.models import Household

    other = enroll(Household.objects.exclude(pk=home.pk).first())
    early = finding(home, started=NOW - timedelta(hours=5))
    [cleared, ongoing] = service.apply_findings(
        [early, finding(other, started=NOW - timedelta(hours=1))], now=NOW
    )
    service.apply_findings([finding(home, started=NOW - timedelta(hours=5), event="resolved")])
    assert list(service.queue()) == [ongoing, cleared]
