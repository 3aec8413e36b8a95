from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.template.loader import render_to_string

from lianxin.health import report as health_report
from lianxin.health.context import open_alerts


def healthz(request):
    """For probes (Kubernetes, systemd, load balancers, uptime checkers): 200 when all is well,
    503 when anything is wrong, with the whole report as JSON either way.

    ?scope=web answers only for this web process (database and readings store reachable): for
    a liveness probe that restarts the web server, which cannot mend a dead monitor."""
    if request.GET.get("scope") == "web":
        db, store = health_report.database_reachable(), health_report.store_reachable()
        ok = db["ok"] and store["ok"]
        body = {"status": "ok" if ok else "unhealthy", "database": db, "store": store}
        return JsonResponse(body, status=200 if ok else 503)
    report = health_report.build()
    return JsonResponse(report, status=200 if report["healthy"] else 503)


@login_required
def banner(request):
    """What every duty-room page polls: the system-alert banner, fresh."""
    alerts = open_alerts()
    html = render_to_string("health/_banner.html", {"system_alerts": alerts}, request=request)
    return JsonResponse({"html": html, "count": len(alerts)})
