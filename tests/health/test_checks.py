"""The dead-man's switch with a controllable clock: each failure opens one system alert, sends
the raised signal, turns /healthz to 503 and `lianxin status` non-zero; when the condition ends
the alert clears by itself with the time it lasted, the cleared signal is sent, and /healthz is
200 again."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from django.utils import timezone

from lianxin import health
from lianxin.care.models import Meter
from lianxin.care.seed import seed_demo_town
from lianxin.health.beats import monitor_beat
from lianxin.health.checks import reconcile
from lianxin.health.models import Source, SystemAlert
from lianxin.monitor import Monitor
from lianxin.store import open_stores

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def open_kinds():
    return sorted(
        SystemAlert.objects.filter(cleared_at__isnull=True).values_list("kind", flat=True)
    )


def healthz(client):
    response = client.get("/healthz")
    return response.status_code, response.json()


def test_nothing_running_yet_is_healthy(client):
    status, body = healthz(client)
    assert status == 200, body
    assert body["database"]["ok"] and body["store"]["ok"]
    assert body["system_alerts"] == []


def test_the_web_scope_answers_for_the_web_process_only(client):
    health.beat("monitor", every=60, at=timezone.now() - timedelta(hours=1))
    assert healthz(client)[0] == 503
    response = client.get("/healthz?scope=web")
    assert response.status_code == 200 and response.json()["database"]["ok"]


def test_a_monitor_that_stops_stepping_raises_and_then_clears_with_its_duration(
    client, signals, settings
):
    settings.LIANXIN_MONITOR_STALE_MINUTES = 5
    health.beat("monitor", every=60, at=T0)
    assert reconcile(T0 + timedelta(minutes=4)).opened == []
    result = reconcile(T0 + timedelta(minutes=6))
    assert [a.kind for a in result.opened] == ["monitor_down"]
    assert [(s, a.kind) for s, a in signals] == [("raised", "monitor_down")]
    # Checked again (from another process, say): still one alert, no second signal.
    assert reconcile(T0 + timedelta(minutes=7)).opened == []
    assert len(signals) == 1 and open_kinds() == ["monitor_down"]

    health.beat("monitor", every=60, at=T0 + timedelta(minutes=20))
    result = reconcile(T0 + timedelta(minutes=20, seconds=30))
    [alert] = result.cleared
    assert alert.duration == timedelta(minutes=14, seconds=30)
    assert signals[-1][0] == "cleared" and signals[-1][1].duration == alert.duration
    assert open_kinds() == []


def test_a_hung_monitor_engine_clock_frozen_raises_a_lag_alert(client, signals, settings, tmp_path):
    settings.LIANXIN_LAG_GRACE_MINUTES = 15
    monitor = Monitor(tmp_path, "Asia/Shanghai", history_days=1, lateness=timedelta(minutes=5))
    try:
        # The engine's clock stops an hour ago (a step that hung there); real time goes on.
        frozen = timezone.now() - timedelta(hours=1)
        report = monitor.step(frozen)
        monitor_beat(monitor, report, 0.1, every=60)
        reconcile()
        assert open_kinds() == ["engine_lag"]
        status, body = healthz(client)
        assert status == 503
        assert [a["kind"] for a in body["system_alerts"]] == ["engine_lag"]
        [proc] = body["processes"]
        assert proc["process"] == "monitor" and proc["lag_s"] >= 3600 - 300

        report = monitor.step()  # it catches up to now
        monitor_beat(monitor, report, 0.1, every=60)
        result = reconcile()
        assert [a.kind for a in result.cleared] == ["engine_lag"]
        assert [s for s, _ in signals] == ["raised", "cleared"]
        assert healthz(client)[0] == 200
    finally:
        monitor.close()


def test_a_daily_source_is_not_late_at_night_but_is_when_a_day_is_missed(client, settings):
    settings.LIANXIN_SOURCE_GRACE_MINUTES = 10
    # A utility pushes its export each morning, with a few minutes' jitter; its last one came
    # 40 hours ago (real time), so today's is missing.
    now = timezone.now()
    first = now - timedelta(hours=40, minutes=28) - timedelta(days=4)
    for day in range(5):
        health.seen("token", "utility-daily", first + timedelta(days=day, minutes=7 * day))
    last = Source.objects.get(name="utility-daily").last_seen_at
    # That night and the next morning, before the usual gap has run out: no alert.
    assert reconcile(last + timedelta(hours=20)).opened == []
    assert reconcile(last + timedelta(hours=30)).opened == []
    # A whole day's export missed: alert, and the probe says so.
    status, body = healthz(client)
    assert status == 503
    [alert] = body["system_alerts"]
    assert (alert["kind"], alert["subject"]) == ("source_silent", "token utility-daily")
    assert alert["detail"]["usual_gap_s"] == pytest.approx(24 * 3600 + 7 * 60, abs=1)
    # The file arrives: the alert clears by itself.
    health.seen("token", "utility-daily")
    assert healthz(client)[0] == 200
    [cleared] = SystemAlert.objects.filter(kind="source_silent")
    assert cleared.cleared_at is not None


def test_a_token_push_through_the_api_is_recorded_as_its_source(client):
    from lianxin.ingest.api.models import ApiToken

    _, raw = ApiToken.issue("feed-a")
    response = client.post(
        "/api/v1/readings",
        data=b"[]",
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code < 500
    assert Source.objects.filter(kind="token", name="feed-a").exists()


def test_a_new_source_is_learned_before_it_is_judged(settings):
    settings.LIANXIN_SOURCE_MIN_GAPS = 3
    health.seen("folder", "/srv/drop", T0)
    health.seen("folder", "/srv/drop", T0 + timedelta(hours=1))
    # One gap known: a week of silence is not judged yet (no false alarm while learning).
    assert reconcile(T0 + timedelta(days=7)).opened == []


def test_a_backlog_that_does_not_go_down_raises_and_clears(signals, settings):
    settings.LIANXIN_BACKLOG_MINUTES = 10
    health.beat("notify", every=10, backlog=3, at=T0)
    health.beat("notify", every=10, backlog=8, at=T0 + timedelta(minutes=6))
    health.beat("notify", every=10, backlog=12, at=T0 + timedelta(minutes=11))
    [alert] = reconcile(T0 + timedelta(minutes=11, seconds=5)).opened
    assert alert.kind == "backlog" and alert.detail["backlog"] == 12
    health.beat("notify", every=10, backlog=4, at=T0 + timedelta(minutes=12))  # draining
    assert [a.kind for a in reconcile(T0 + timedelta(minutes=12, seconds=5)).cleared] == ["backlog"]


def test_a_worker_that_stops_beating_is_down_unless_it_stopped_cleanly(settings):
    settings.LIANXIN_PROCESS_STALE_MINUTES = 5
    health.beat("mqtt lianxin", every=10, at=T0)
    health.beat("watch /srv/drop", every=5, at=T0)
    health.stopped("watch /srv/drop")
    [alert] = reconcile(T0 + timedelta(minutes=6)).opened
    assert (alert.kind, alert.subject) == ("process_down", "mqtt lianxin")


def _town_readings(settings, silent_areas: int) -> tuple[datetime, str, set]:
    """12 hours of readings of every meter of a 3-area town, where the meters of the first
    `silent_areas` areas stop 2 hours before the hour returned."""
    seed_demo_town(seed=7, households=24, areas=3)
    meters = list(
        Meter.objects.filter(kind="electricity").values_list(
            "number", "household__transformer_area__code"
        )
    )
    areas = sorted({a for _, a in meters})[:silent_areas]
    down = {m for m, a in meters if a in areas}
    # On the quarter-hour grid, and close to real time: /healthz judges at real time.
    now = timezone.now()
    now = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0)
    rows = []
    t = now - timedelta(hours=12)
    while t < now:
        rows += [
            (m, t, 0.1) for m, _ in meters if not (m in down and t >= now - timedelta(hours=2))
        ]
        t += timedelta(minutes=15)
    frame = pl.DataFrame(rows, schema=["meter", "ts", "value"], orient="row").with_columns(
        ts=pl.col("ts").dt.replace_time_zone("UTC").dt.cast_time_unit("us"), unit=pl.lit("kWh")
    )
    open_stores(settings.LIANXIN_HOME).readings.write(frame)
    return now, (areas[0] if areas else ""), down


def test_a_transformer_area_whose_meters_fall_silent_together(client, settings):
    settings.LIANXIN_AREA_SILENT_SHARE = 0.5
    now, area, down = _town_readings(settings, silent_areas=1)
    result = reconcile(now)
    assert [(a.kind, a.subject) for a in result.opened] == [("concentrator_down", area)]
    assert result.opened[0].detail["silent"] == len(down)
    assert healthz(client)[0] == 503


def test_every_area_silent_at_once_is_not_a_concentrator(settings):
    # The whole feed stopped, or the data comes in daily batches: not one area's concentrator.
    now, _, _ = _town_readings(settings, silent_areas=3)
    assert reconcile(now).opened == []


@pytest.mark.parametrize(
    "lang, text",
    [("zh-hans", "监测进程已"), ("en", "The monitor has not stepped for")],
)
def test_the_banner_is_on_every_duty_room_page_in_the_reader_s_language(client, lang, text):
    from django.contrib.auth import get_user_model

    seed_demo_town(seed=7, households=6, areas=1)
    health.beat("monitor", every=60, at=timezone.now() - timedelta(hours=1))
    client.force_login(get_user_model().objects.get(username="operator"))
    client.cookies["django_language"] = lang
    for url in ("/alerts/", "/dispatch/orders/"):
        page = client.get(url, headers={"Accept-Language": lang}).content.decode()
        assert 'class="system-alerts"' in page and text in page, url
    fragment = client.get("/health/banner.json").json()
    assert fragment["count"] == 1 and text in fragment["html"]


def test_a_revoked_token_s_silence_is_not_an_alert():
    from lianxin.ingest.api.models import ApiToken

    token, _ = ApiToken.issue("old-feed")
    for hour in range(5):
        health.seen("token", "old-feed", T0 + timedelta(hours=hour))
    token.revoke()
    assert reconcile(T0 + timedelta(days=3)).opened == []
