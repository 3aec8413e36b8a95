"""A small demo town and findings about its homes, for the alerts, dispatch and web tests."""

from datetime import UTC, datetime, timedelta

from lianxin.care.models import CareRecipient, Consent, Household, Team
from lianxin.care.seed import seed_demo_town
from lianxin.engine.findings import Finding

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


def town():
    seed_demo_town(seed=3, households=24, areas=2)


def cared_home(team_name="连心桥服务队") -> Household:
    person = CareRecipient.objects.filter(team=Team.objects.get(name=team_name)).first()
    return person.household


def enroll(home: Household) -> Household:
    """Enrol someone at `home` with consent to monitoring, so the duty room acts on its alarms."""
    person = CareRecipient.objects.create(name="王秀英", birth_year=1941, household=home)
    Consent.objects.create(
        care_recipient=person,
        scope="monitoring",
        given_at=NOW - timedelta(days=90),
        given_by="本人",
    )
    return home


def finding(home, kind="no_power", severity="critical", started=None, event="raised", **kw):
    started = started or NOW - timedelta(hours=1)
    return Finding(
        kind=kind,
        severity=severity,
        started_at=started,
        detected_at=kw.pop("detected", NOW),
        reason_en=kw.pop("reason_en", f"{kind} at {home.code}"),
        reason_zh=kw.pop("reason_zh", f"{home.code} 出现 {kind}"),
        household_id=home.code,
        event=event,
        **kw,
    )


def outage(area, homes=(), event="raised", started=None):
    return Finding(
        kind="grid_outage",
        severity="critical",
        started_at=started or NOW - timedelta(minutes=30),
        detected_at=NOW,
        reason_en=f"{area.code}: many meters lost power together",
        reason_zh=f"{area.code}：多块电表同时失电",
        transformer_area=area.code,
        households=tuple(h.code for h in homes),
        event=event,
    )
