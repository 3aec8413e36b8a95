"""The system-alert banner on every page (a context processor)."""

from lianxin.health.checks import reconcile_if_due
from lianxin.health.models import SystemAlert


def open_alerts() -> list[SystemAlert]:
    reconcile_if_due()
    return list(SystemAlert.objects.filter(cleared_at__isnull=True).order_by("opened_at"))


def system_alerts(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"system_alerts": open_alerts()}
