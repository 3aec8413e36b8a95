from django import template
from django.utils.translation import gettext as _

register = template.Library()


def duration_text(seconds) -> str:
    """A duration for people ("2 h 5 min"), in the active language; public for other apps
    (notify's all-clear messages) as well as the `span` filter."""
    seconds = int(seconds or 0)
    if seconds >= 86400:
        return _("%(d)d d %(h)d h") % {"d": seconds // 86400, "h": seconds % 86400 // 3600}
    if seconds >= 3600:
        return _("%(h)d h %(m)d min") % {"h": seconds // 3600, "m": seconds % 3600 // 60}
    if seconds >= 60:
        return _("%(m)d min") % {"m": seconds // 60}
    return _("%(s)d s") % {"s": seconds}


@register.filter
def span(seconds) -> str:
    return duration_text(seconds)


@register.filter
def system_alert_text(alert) -> str:
    """One sentence a duty operator can act on."""
    d = alert.detail or {}
    k = alert.kind
    if k == "monitor_down":
        return _("The monitor has not stepped for %(t)s: no new alerts are being raised.") % {
            "t": duration_text(d.get("silent_s"))
        }
    if k == "engine_lag":
        return _("The engine's clock is %(t)s behind: alerts come late.") % {
            "t": duration_text(d.get("lag_s"))
        }
    if k == "process_down":
        return _("Process %(p)s has not reported for %(t)s.") % {
            "p": alert.subject,
            "t": duration_text(d.get("silent_s")),
        }
    if k == "source_silent":
        return _("Data source %(s)s silent for %(t)s (it usually sends every %(u)s).") % {
            "s": alert.subject,
            "t": duration_text(d.get("silent_s")),
            "u": duration_text(d.get("usual_gap_s")),
        }
    if k == "concentrator_down":
        return _(
            "Transformer area %(a)s: %(n)d of %(m)d meters silent for the last hour "
            "(concentrator down?)."
        ) % {"a": alert.subject, "n": d.get("silent", 0), "m": d.get("meters", 0)}
    if k == "backlog":
        return _("%(p)s: %(n)d waiting, not going down for %(t)s.") % {
            "p": alert.subject,
            "n": d.get("backlog", 0),
            "t": duration_text(d.get("since_s")),
        }
    return str(alert.get_kind_display())
