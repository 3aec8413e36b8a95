import json
import os
import urllib.request

from django.apps import AppConfig


def _post(event, alert):
    body = {
        "event": event,
        "kind": alert.kind,
        "subject": alert.subject,
        "opened_at": alert.opened_at.isoformat(),
        "cleared_at": alert.cleared_at.isoformat() if alert.cleared_at else None,
        "duration_s": alert.duration.total_seconds() if alert.cleared_at else None,
        "pid": os.getpid(),
    }
    request = urllib.request.Request(
        os.environ["LIANXIN_TEST_RECEIVER"],
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


class LoopbackConfig(AppConfig):
    name = "tests.health.loopback"
    label = "health_loopback"

    def ready(self):
        from lianxin.health.signals import system_alert_cleared, system_alert_raised

        def raised(sender, alert, **kwargs):
            _post("raised", alert)

        def cleared(sender, alert, **kwargs):
            _post("cleared", alert)

        system_alert_raised.connect(raised, weak=False)
        system_alert_cleared.connect(cleared, weak=False)
