"""A real MQTT feed through a real Mosquitto and the subscriber: its subscription is a source
whose usual gap is learned; stopping the feed raises a source alert after that gap, not before,
and the feed coming back clears it."""

import threading
import time
from datetime import timedelta

import pytest

from lianxin.health.checks import allowed_silence, reconcile
from lianxin.health.models import Heartbeat, Source, SystemAlert
from lianxin.ingest.api.intake import Intake
from lianxin.ingest.mqtt import Subscriber
from tests.ingest.test_mqtt import Broker, Publisher, _wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]
TOPIC = "lianxin/+/readings"


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def test_a_silent_mqtt_feed_raises_after_its_usual_gap_not_before(
    transactional_db, broker, settings, client
):
    # Every arrival counts (no 30 s resolution) and no grace: the feed's own gaps decide.
    settings.LIANXIN_SOURCE_RESOLUTION_SECONDS = 0
    settings.LIANXIN_SOURCE_GRACE_MINUTES = 0
    settings.LIANXIN_SOURCE_MIN_GAPS = 3
    sub = Subscriber(
        host="127.0.0.1",
        port=broker.port,
        topics=[TOPIC],
        client_id="health-test",
        intake=Intake(),
        flush_seconds=0.01,
        log=lambda msg: None,
    )
    stop = threading.Event()
    thread = threading.Thread(target=sub.run, args=(stop,), kwargs={"stats_every": 60})
    thread.start()
    publisher = Publisher(broker)
    try:
        _wait_for(
            lambda: Heartbeat.objects.filter(process="mqtt health-test").exists(), 30, "no beat"
        )
        reading = {"meter": "3200000001", "ts": "2026-11-27T08:15:00+08:00", "value": 0.4}
        for _ in range(5):
            publisher.publish(reading, topic="lianxin/hes-1/readings")
            time.sleep(0.3)  # a feed that sends every 0.3 s
        publisher.wait_all_acked(30)
        _wait_for(lambda: len(Source.objects.get(kind="mqtt", name=TOPIC).gaps) >= 4, 30, "gaps")
        source = Source.objects.get(kind="mqtt", name=TOPIC)
        allowed = timedelta(seconds=allowed_silence(source.gaps))
        # Silent for half its usual allowance: not yet.
        assert reconcile(source.last_seen_at + allowed / 2).opened == []
        # Past it: a source alert, and the probe turns 503 once real time gets there too.
        [alert] = reconcile(source.last_seen_at + allowed * 2).opened
        assert (alert.kind, alert.subject) == ("source_silent", f"mqtt {TOPIC}")
        _wait_for(lambda: client.get("/healthz").status_code == 503, 30, "no 503")
        # The feed comes back: the alert clears by itself.
        publisher.publish(reading, topic="lianxin/hes-1/readings")
        _wait_for(lambda: client.get("/healthz").status_code == 200, 30, "no 200")
        assert SystemAlert.objects.get(pk=alert.pk).cleared_at is not None
    finally:
        publisher.close()
        stop.set()
        thread.join(30)
    # A clean stop is not a dead subscriber.
    assert Heartbeat.objects.get(process="mqtt health-test").stopped_at is not None
