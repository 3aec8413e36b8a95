"""Lianxin's own failures (lianxin.health's system alerts: a stopped monitor, a silent feed)
reach the duty room and the team lead through the same channels as household alerts."""

from django.utils import translation
from django.utils.translation import gettext as _

from lianxin.health.models import SystemAlert
from lianxin.health.templatetags.health import duration_text, system_alert_text
from lianxin.notify import messages
from lianxin.notify.service import enqueue_system

# Alerting itself stops or lags: as urgent as a home without power (quiet hours do not hold it).
CRITICAL = {
    SystemAlert.Kind.MONITOR_DOWN,
    SystemAlert.Kind.ENGINE_LAG,
    SystemAlert.Kind.PROCESS_DOWN,
}


def _texts(alert: SystemAlert, cleared: bool) -> tuple[str, str]:
    out = []
    for language in ("zh-hans", "en"):
        with translation.override(language):
            text = system_alert_text(alert)
            if cleared:
                text = _("Resolved after %(t)s: %(what)s") % {
                    "t": duration_text(alert.duration.total_seconds()),
                    "what": text,
                }
            out.append(text)
    return out[0], out[1]


def on_raised(sender, alert: SystemAlert, **kwargs):
    zh, en = _texts(alert, cleared=False)
    severity = "critical" if alert.kind in CRITICAL else "warning"
    enqueue_system(
        f"system:{alert.pk}:raised",
        severity,
        zh,
        en,
        link=f"{messages.base_url()}/healthz",
        roles=("duty", "lead"),
    )


def on_cleared(sender, alert: SystemAlert, **kwargs):
    zh, en = _texts(alert, cleared=True)
    enqueue_system(
        f"system:{alert.pk}:cleared",
        "critical" if alert.kind in CRITICAL else "warning",
        zh,
        en,
        link=f"{messages.base_url()}/healthz",
        roles=("duty", "lead"),
    )
