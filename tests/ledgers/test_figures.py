"""The figures of a known October, counted by hand (see records.py for every record)."""

from datetime import date

import pytest

from lianxin.ledgers.figures import Period, Scope, figures, p90
from lianxin.ledgers.service import named_people
from tests.ledgers.records import known_records, local

pytestmark = pytest.mark.django_db
NOW = local(2026, 12, 4, 12)
OCTOBER = Period.month(2026, 10)


@pytest.fixture
def rec():
    return known_records()


def test_period_is_whole_local_days():
    assert OCTOBER.first == date(2026, 10, 1) and OCTOBER.last == date(2026, 10, 31)
    assert OCTOBER.start.isoformat() == "2026-10-01T00:00:00+08:00"
    assert Period.month(2026, 12).last == date(2026, 12, 31)


def test_visits_repairs_and_satisfaction(rec):
    f = figures(Scope(OCTOBER), now=NOW)
    # Oct 10 (repair, 5), the one ending 00:30 on Oct 1 local (3), the alert's visit Oct 20
    # (no rating). Not: the one spanning midnight into November, the one ending 23:50 on
    # Sep 30, the cancelled one.
    assert f["visits"] == 3
    assert f["repairs"] == 1
    assert f["cancelled"] == 1
    assert f["by_source"] == {"alert": 1, "hotline": 2, "inspection": 0, "campaign": 0}
    assert (f["rated"], f["satisfied"]) == (2, 1)
    assert f["satisfaction_rate"] == 0.5


def test_the_visit_spanning_midnight_counts_in_november(rec):
    f = figures(Scope(Period.month(2026, 11)), now=NOW)
    assert f["visits"] == 1 and f["repairs"] == 1 and f["satisfaction_rate"] == 0.0


def test_response_times_from_the_event_log(rec):
    r = figures(Scope(OCTOBER), now=NOW)["response"]
    # Acknowledged after 5 (then released and acknowledged again at 30: the first counts),
    # 10 and 20 minutes; the alert at 23:55 on Oct 31 is not acknowledged at all.
    assert r["ack"] == {"n": 3, "median": 10.0, "p90": 20.0}
    assert r["call"] == {"n": 2, "median": 10.0, "p90": 12.0}
    assert r["arrival"] == {"n": 1, "median": 40.0, "p90": 40.0}


def test_alerts_by_kind_and_outcome_with_false_alarm_share(rec):
    f = figures(Scope(OCTOBER), now=NOW)
    # The no_power alert five minutes into November (local) is not October's.
    assert f["alerts"] == 4
    kinds = {k["kind"]: k for k in f["alerts_by_kind"]}
    assert (kinds["inactivity"]["total"], kinds["inactivity"]["resolved"]) == (2, 2)
    assert kinds["inactivity"]["outcomes"] == {"resident_fine": 1, "false_alarm": 1}
    assert kinds["inactivity"]["false_share"] == 0.5
    assert kinds["no_power"]["false_share"] == 1.0
    assert (kinds["high_load"]["total"], kinds["high_load"]["false_share"]) == (1, None)


def test_inspections_activities_and_beneficiaries(rec):
    f = figures(Scope(OCTOBER), now=NOW)
    assert f["inspections"] == 1  # 23:30 on Oct 31; the one at 00:30 on Nov 1 is November's
    assert (f["defects_found"], f["defects_fixed"]) == (2, 1)
    assert f["activities"] == 2 and f["beneficiaries"] == 34


def test_no_contact_in_30_days_leaves_out_withdrawn_consent(rec):
    f = figures(Scope(OCTOBER), now=NOW)
    # Window: Oct 2 00:00 – Nov 1 00:00 local. P1 was called (Oct 25); P3 withdrew consent;
    # P5 never consented; P2's last arrival was Oct 1 00:10, before the window; P4: nothing.
    assert sorted(p.name for p in f["no_contact_people"]) == ["老人2", "老人4"]
    assert f["watched"] == 3  # P1, P2, P4


def test_team_and_area_filters(rec):
    t1 = figures(Scope(OCTOBER, team=rec.t1), now=NOW)
    assert t1["visits"] == 2  # the alert's visit went to the other team
    assert [p.name for p in t1["no_contact_people"]] == ["老人2"]
    assert t1["alerts"] == 3  # the inactivity alert at P4's home is the other team's
    assert t1["activities"] == 1 and t1["beneficiaries"] == 30
    area2 = figures(Scope(OCTOBER, area=rec.area2), now=NOW)
    assert (area2["alerts"], area2["visits"], area2["inspections"]) == (1, 0, 0)


def test_a_person_who_withdrew_consent_is_counted_but_not_named(rec):
    assert rec.talk.beneficiaries == 30
    assert named_people(rec.talk) == []


def test_p90_is_nearest_rank():
    assert p90([1]) == 1
    assert p90(list(range(1, 11))) == 9
    assert p90(list(range(1, 12))) == 10
    assert p90([]) is None
