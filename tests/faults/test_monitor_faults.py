"""The monitor keeps watching through faults of the data around it: a household renamed behind
its back or deleted, and (see test_damaged_store) damaged files in the store."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from lianxin.alerts.models import Alert
from lianxin.care.models import CareRecipient, Consent, Household, Meter
from tests.monitor.test_monitor import HOMES, LIVE, readings, town, with_history  # noqa: F401

pytestmark = pytest.mark.django_db


def enroll(code: str):
    person = CareRecipient.objects.create(
        name="王秀英", birth_year=1940, household=Household.objects.get(code=code)
    )
    Consent.objects.create(
        care_recipient=person,
        scope="monitoring",
        given_at=datetime(2024, 5, 1, tzinfo=UTC),
        given_by="本人",
    )


def zeros_at(meters: set[str], start, end) -> pl.DataFrame:
    feed = readings(start, end)
    return feed.with_columns(
        value=pl.when(pl.col("meter").is_in(list(meters))).then(0.0).otherwise("value")
    )


@pytest.mark.parametrize("fault", ["renamed", "deleted"])
def test_a_household_renamed_or_deleted_under_a_running_monitor(town, tmp_path, fault):  # noqa: F811
    enroll(HOMES[1])
    stores, monitor = with_history(tmp_path, 35)
    monitor.step(LIVE, raise_alerts=False)
    # Behind the monitor's back (SQL, a script: the admin no longer allows renaming) the second
    # home's code changes or the home goes; the engine still knows the old code.
    if fault == "renamed":
        Household.objects.filter(code=HOMES[1]).update(code="RENAMED-1")
    else:
        Consent.objects.filter(care_recipient__household__code=HOMES[1]).delete()
        CareRecipient.objects.filter(household__code=HOMES[1]).delete()
        Meter.objects.filter(household__code=HOMES[1]).delete()
        Household.objects.filter(code=HOMES[1]).delete()
    stores.readings.write(zeros_at({"M0", "M1"}, LIVE, LIVE + timedelta(hours=2)))
    report = monitor.step(LIVE + timedelta(hours=2))

    # Mr. Du's alarm still opens; the finding about the vanished code is skipped and named.
    assert Alert.objects.filter(kind="no_power", household__code=HOMES[0]).count() == 1
    assert report.skipped, "the finding about the old code was neither applied nor reported"
    assert {f.household_id for f, _why in report.skipped} == {HOMES[1]}
    assert all(HOMES[1] in why for _f, why in report.skipped)
    # The state was saved: the next step goes on from here and repeats nothing.
    assert monitor.engine.now == int((LIVE + timedelta(hours=2)).timestamp())
    monitor.sync_registry()
    stores.readings.write(readings(LIVE + timedelta(hours=2), LIVE + timedelta(hours=3)))
    monitor.step(LIVE + timedelta(hours=3))
    assert Alert.objects.filter(kind="no_power", household__code=HOMES[0]).count() == 1
    monitor.close()


def test_a_truncated_file_in_the_store_does_not_stop_the_monitor(town, tmp_path, caplog):  # noqa: F811
    stores, monitor = with_history(tmp_path, 35)
    monitor.step(LIVE, raise_alerts=False)
    stores.readings.write(zeros_at({"M0"}, LIVE, LIVE + timedelta(hours=2)))
    # A neighbour's late batch lands in its own file, which the disk then cuts short.
    late = readings(LIVE, LIVE + timedelta(hours=2)).filter(pl.col("meter") == "M3")
    stores.readings.write(late.with_columns(value=pl.col("value") + 0.001))
    day = tmp_path / "readings" / f"day={LIVE.date().isoformat()}"
    victim = max(day.glob("*.parquet"))
    victim.write_bytes(victim.read_bytes()[:100])
    report = monitor.step(LIVE + timedelta(hours=2))
    monitor.close()
    assert Alert.objects.filter(kind="no_power", household__code=HOMES[0]).count() == 1
    assert report.readings > 0
    assert victim.name in caplog.text
    assert (tmp_path / "readings" / "damaged" / day.name / victim.name).exists()
