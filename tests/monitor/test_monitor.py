"""The monitor end to end: readings in the store -> engine -> alerts in the database, and a
restart that carries on without losing or repeating anything."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from lianxin.alerts.models import Alert
from lianxin.care.models import CareRecipient, Consent, Household, Meter, TransformerArea
from lianxin.errors import LianxinError
from lianxin.monitor import Monitor
from lianxin.store import open_stores

pytestmark = pytest.mark.django_db
SAMPLE = Path(__file__).parents[1] / "data" / "lcl_sample.parquet"
HOMES = ["MAC000002", "MAC000003", "MAC000005", "MAC000007"]
# The sample's clock is UTC; put its curves 12 years later so they look recent.
SHIFT = datetime(2025, 1, 6, tzinfo=UTC) - datetime(2013, 1, 7, tzinfo=UTC)


@pytest.fixture
def town():
    area = TransformerArea.objects.create(code="TA1", name="三苏路1号台区")
    for i, source in enumerate(HOMES):
        home = Household.objects.create(
            code=source, address=f"三苏路{i + 1}号", transformer_area=area
        )
        Meter.objects.create(
            number=f"M{i}", account_number=f"A{i}", household=home, interval_minutes=30
        )
    du = CareRecipient.objects.create(
        name="杜德明", birth_year=1935, household=Household.objects.get(code=HOMES[0])
    )
    Consent.objects.create(
        care_recipient=du,
        scope="monitoring",
        given_at=datetime(2024, 5, 1, tzinfo=UTC),
        given_by="本人",
    )


def readings(start: datetime, end: datetime) -> pl.DataFrame:
    """The real curves of HOMES for [start, end) as the store takes them."""
    df = pl.read_parquet(SAMPLE).filter(pl.col("household_id").is_in(HOMES))
    df = df.with_columns(ts=pl.col("ts").dt.replace_time_zone("UTC") + SHIFT)
    df = df.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
    meter = pl.col("household_id").replace_strict({h: f"M{i}" for i, h in enumerate(HOMES)})
    return df.select(meter=meter, ts="ts", value="kwh", unit=pl.lit("kWh"))


LIVE = datetime(2025, 2, 17, 9, tzinfo=UTC)  # when the tests' monitor starts


def with_history(tmp_path, days: int, **options):
    """The store holding `days` of the real curves up to LIVE, and a monitor on it."""
    stores = open_stores(tmp_path)
    stores.readings.write(readings(LIVE - timedelta(days=days), LIVE))
    return stores, Monitor(tmp_path, "Asia/Shanghai", history_days=days, **options)


def test_power_lost_at_one_home_becomes_one_alert_and_survives_a_restart(town, tmp_path):
    stores, monitor = with_history(tmp_path, 35)
    monitor.step(LIVE, raise_alerts=False)  # learn the routines; nothing to report yet
    assert not Alert.objects.exists()

    # Two hours of zeros at Mr. Du's home while the neighbours carry on as usual.
    feed = readings(LIVE, LIVE + timedelta(hours=2))
    feed = feed.with_columns(value=pl.when(pl.col("meter") == "M0").then(0.0).otherwise("value"))
    stores.readings.write(feed)
    report = monitor.step(LIVE + timedelta(hours=2))
    monitor.close()

    kinds = {(f.kind, f.household_id) for f in report.findings if f.event == "raised"}
    assert ("no_power", "MAC000002") in kinds
    # Only Mr. Du gave consent: findings about his neighbours open no alert.
    assert set(Alert.objects.values_list("household__code", flat=True)) == {"MAC000002"}
    alert = Alert.objects.get(kind="no_power")
    assert alert.household.code == "MAC000002"
    assert alert.detected_at <= LIVE + timedelta(minutes=30)

    # A restart picks up the saved state: the same step again changes nothing.
    again = Monitor(tmp_path, "Asia/Shanghai")
    assert again.engine.now == int((LIVE + timedelta(hours=2)).timestamp())
    again.step(LIVE + timedelta(hours=2))
    assert Alert.objects.filter(kind="no_power").count() == 1
    again.close()


def test_one_monitor_per_data_directory(town, tmp_path):
    first = Monitor(tmp_path, "Asia/Shanghai")
    with pytest.raises(LianxinError, match="another monitor is already running"):
        Monitor(tmp_path, "Asia/Shanghai")
    first.close()
    Monitor(tmp_path, "Asia/Shanghai").close()


def test_readings_of_unknown_meters_and_other_units_are_counted_not_used(town, tmp_path):
    stores = open_stores(tmp_path)
    t = datetime(2025, 2, 1, tzinfo=UTC)
    stores.readings.write(
        pl.DataFrame(
            {
                "meter": ["M0", "NOPE", "M1"],
                "ts": [t, t, t],
                "value": [0.2, 0.3, 231.0],
                "unit": ["kWh", "kWh", "V"],
            },
            schema_overrides={"ts": pl.Datetime("us", "UTC")},
        )
    )
    monitor = Monitor(tmp_path, "Asia/Shanghai", history_days=1)
    report = monitor.step(t + timedelta(hours=1))
    monitor.close()
    assert report.readings == 1
    assert report.unknown_meters == 1
    assert report.skipped_units == 1


def test_a_prepaid_cut_off_is_its_own_alert_not_no_power(town, tmp_path):
    stores, monitor = with_history(tmp_path, 35)
    monitor.step(LIVE, raise_alerts=False)

    # The balance ran out: the relay opened at 09:02 and the meter reads zero from then on.
    feed = readings(LIVE, LIVE + timedelta(hours=2))
    feed = feed.with_columns(value=pl.when(pl.col("meter") == "M0").then(0.0).otherwise("value"))
    stores.readings.write(feed)
    stores.events.write(
        pl.DataFrame(
            {
                "meter": ["M0"],
                "ts": [LIVE + timedelta(minutes=2)],
                "event": ["relay_open"],
                "detail": ["余额不足"],
            },
            schema_overrides={"ts": pl.Datetime("us", "UTC")},
        )
    )
    report = monitor.step(LIVE + timedelta(hours=2))
    monitor.close()
    assert report.events == 1
    kinds = {f.kind for f in report.findings if f.household_id == "MAC000002"}
    assert "prepaid_cutoff" in kinds and "no_power" not in kinds
    assert Alert.objects.filter(kind="prepaid_cutoff", household__code="MAC000002").exists()


@pytest.mark.parametrize(
    "lateness, learned", [(timedelta(minutes=10), True), (timedelta(0), False)]
)
def test_a_reading_that_arrives_minutes_late_is_still_judged(town, tmp_path, lateness, learned):
    stores, monitor = with_history(tmp_path, 3, lateness=lateness)
    monitor.step(LIVE + lateness, raise_alerts=False)
    # The half hour up to 09:30 ends; the step at 09:30 runs before its readings arrive at 09:32.
    monitor.step(LIVE + timedelta(minutes=30), raise_alerts=False)
    stores.readings.write(readings(LIVE, LIVE + timedelta(minutes=30)))
    report = monitor.step(LIVE + timedelta(minutes=45), raise_alerts=False)
    monitor.close()
    assert report.judged_to == LIVE + timedelta(minutes=45) - lateness
    row = monitor.engine.index["MAC000002"]
    seen_to = int((LIVE + timedelta(minutes=30)).timestamp())
    assert bool(monitor.engine.a["last_end"][row] == seen_to) is learned
    assert report.readings == (4 if learned else 0)


def test_the_outcome_of_a_worked_alarm_reaches_the_engine_once(town, tmp_path):
    stores, monitor = with_history(tmp_path, 3)
    monitor.step(LIVE, raise_alerts=False)
    started = LIVE - timedelta(hours=30)
    for outcome, home in (("false_alarm", HOMES[0]), ("real_emergency", HOMES[1])):
        Alert.objects.create(
            kind="inactivity", severity="warning", key=f"inactivity|{home}",
            household=Household.objects.get(code=home), reason_en="-", reason_zh="-",
            started_at=started, detected_at=started + timedelta(hours=5),
            last_detected_at=started + timedelta(hours=5), status="resolved",
            resolved_at=LIVE - timedelta(hours=20), outcome=outcome,
        )  # fmt: skip
    report = monitor.step(LIVE + timedelta(minutes=30))
    assert report.outcomes == 2
    assert Alert.objects.filter(fed_back_at__isnull=True).count() == 0
    recent = monitor.engine.a["in_recent"]
    assert recent[monitor.engine.index[HOMES[0]]] == 1  # no emergency: the engine learns
    assert recent[monitor.engine.index[HOMES[1]]] == 0
    # Handed over once: the next step and a restart add nothing.
    assert monitor.step(LIVE + timedelta(hours=1)).outcomes == 0
    monitor.close()
    again = Monitor(tmp_path, "Asia/Shanghai")
    assert again.engine.a["in_recent"][again.engine.index[HOMES[0]]] == 1
    again.close()


def test_a_saved_state_follows_the_deployments_zone(town, tmp_path, caplog):
    stores, monitor = with_history(tmp_path, 2)
    monitor.step(LIVE, raise_alerts=False)
    judged = monitor.engine.now
    monitor.close()
    # The deployment's zone changed (LIANXIN_TIME_ZONE): the restored engine judges local
    # time in the new zone, and says so, instead of keeping the one it was saved with.
    again = Monitor(tmp_path, "Europe/London", history_days=2)
    assert again.engine.cfg.tz == "Europe/London"
    assert again.engine.now == judged
    assert "following LIANXIN_TIME_ZONE=Europe/London" in caplog.text
    again.step(LIVE + timedelta(hours=1), raise_alerts=False)
    again.close()
    last = Monitor(tmp_path, "Europe/London")
    assert last.engine.cfg.tz == "Europe/London"
    last.close()


def test_an_interval_in_two_units_or_from_two_meters_of_a_home_is_summed(town, tmp_path):
    """The engine takes one quantity per home, kind and interval: a meter that sent the same
    interval in kWh and in Wh, or two meters of one home, are added up; the usual case (one
    meter each, one unit) needs no summing and is handed over as it is."""
    from lianxin.monitor.loop import _read_record

    stores = open_stores(tmp_path)
    t = datetime(2025, 2, 1, tzinfo=UTC)

    def interval(rows):
        meter, value, unit = zip(*rows, strict=True)
        stores.readings.write(
            pl.DataFrame(
                {"meter": meter, "ts": [t] * len(rows), "value": value, "unit": unit},
                schema_overrides={"ts": pl.Datetime("us", "UTC")},
            )
        )

    def handed_over(monitor) -> dict:
        last = max(monitor.journal_dir.glob("*.rec"))
        frame = _read_record(last)[1]["readings"]
        return dict(zip(frame["household_id"], frame["quantity"], strict=True))

    interval([("M0", 0.2, "kWh"), ("M1", 0.3, "kWh")])
    monitor = Monitor(tmp_path, "Asia/Shanghai", history_days=1)
    monitor.step(t + timedelta(minutes=30))
    assert handed_over(monitor) == {HOMES[0]: 0.2, HOMES[1]: 0.3}
    t += timedelta(minutes=30)
    interval([("M0", 0.2, "kWh"), ("M1", 300.0, "Wh"), ("M1", 0.1, "kWh")])
    monitor.step(t + timedelta(minutes=30))
    assert handed_over(monitor) == pytest.approx({HOMES[0]: 0.2, HOMES[1]: 0.4})
    # A second meter at Mr. Du's home (its first one replaced): the engine gets the sum.
    Meter.objects.create(
        number="M0B", account_number="A0B", household=Household.objects.get(code=HOMES[0])
    )
    t += timedelta(minutes=30)
    interval([("M0", 0.2, "kWh"), ("M0B", 0.05, "kWh"), ("M1", 0.1, "kWh")])
    monitor.step(t + timedelta(minutes=30))
    assert handed_over(monitor) == pytest.approx({HOMES[0]: 0.25, HOMES[1]: 0.1})
    monitor.close()
