"""Ledger figures at scale: a town of 10,000 households with a year of records (alerts worked
through the case steps, work orders, calls, inspections, activities, a campaign), then the time
of the dashboard and of each ledger page (target <= 300 ms), the campaign page, a work order's
page and the phone forms, every ledger's exports and the monthly PDF (<= 10 s). Prints the
machine it ran on (CPU, cores, load, Python, database) beside the figures.

    .venv/bin/python bench/ledgers.py [HOUSEHOLDS]        (default 10000)

Runs in a fresh temporary data directory: SQLite by default, or DATABASE_URL if set (use an
empty database of your own). Times are medians of 5 requests after one warm-up request.
"""

import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import timedelta

os.environ["LIANXIN_HOME"] = tempfile.mkdtemp(prefix="lianxin-bench-ledgers-")
os.environ["DJANGO_SETTINGS_MODULE"] = "lianxin.web.settings"


def timed(fn, runs=5):
    fn()  # warm templates, catalogues and the database's caches
    out, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        out.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    # The CPU time of this process (SQLite runs in it) says what a page costs on a machine
    # shared with other work, where the wall time also holds the waits for a core.
    timed.cpu = statistics.median(cpu)
    return statistics.median(out), result


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, load {load}; "
        f"Python {platform.python_version()} on {platform.system()} {platform.release()}"
    )


def main(households: int) -> None:
    from lianxin.web.setup import migrate, setup_django

    setup_django()
    migrate()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.test import Client
    from django.utils import timezone

    from lianxin.alerts.models import AlertEvent
    from lianxin.care.models import CareRecipient
    from lianxin.care.seed import DEMO_PASSWORD, seed_demo_town
    from lianxin.dispatch.models import Call, WorkOrder
    from lianxin.ledgers.demo import seed_history
    from lianxin.ledgers.figures import Period, Scope
    from lianxin.ledgers.report import render_pdf

    t = time.perf_counter()
    seed_demo_town(households=households, areas=max(10, households // 200))
    took_town = time.perf_counter() - t
    t = time.perf_counter()
    now = timezone.now()
    h = seed_history(now=now)
    print(
        f"town: {households:,} households, {CareRecipient.objects.count():,} care recipients "
        f"({took_town:.1f} s); a year of history in {time.perf_counter() - t:.1f} s: "
        f"{h.alerts:,} alerts, {AlertEvent.objects.count():,} alert events, "
        f"{WorkOrder.objects.count():,} work orders, {Call.objects.count():,} calls, "
        f"{h.inspections} inspections, {h.activities} activities"
    )
    User.objects.filter(username="lead").update(password=make_password(DEMO_PASSWORD))
    last = Period.containing((now - timedelta(days=now.day + 1)).date())
    month = f"{last.first:%Y-%m}"
    db = "PostgreSQL" if "postgres" in os.environ.get("DATABASE_URL", "") else "SQLite"
    print(f"database: {db}; period: {month}")
    print(machine())
    from lianxin.ledgers.models import Campaign, Inspection

    campaign = Campaign.objects.order_by("pk").first()
    order = WorkOrder.objects.filter(household__isnull=False).order_by("-pk").first()
    due = Inspection.objects.filter(done_at__isnull=True).order_by("due_on").first()
    for lang in ("zh-hans", "en"):
        client = Client(HTTP_ACCEPT_LANGUAGE=lang, HTTP_HOST="localhost")
        assert client.login(username="lead", password=DEMO_PASSWORD)
        for url in [
            f"/ledgers/?month={month}",
            f"/ledgers/recipients/?month={month}",
            "/ledgers/recipients/?page=10",
            f"/ledgers/demand/?month={month}",
            f"/ledgers/demand/?month={month}&page=5",
            f"/ledgers/records/?month={month}",
            f"/ledgers/records/?month={month}&type=repair",
            f"/ledgers/campaigns/{campaign.pk}/",
            f"/dispatch/orders/{order.pk}/",
            "/ledgers/field/",
            f"/ledgers/field/inspections/{due.pk}/" if due else "/ledgers/field/activities/new",
            f"/ledgers/field/campaigns/{campaign.pk}/day",
        ]:
            took, r = timed(lambda url=url, client=client: client.get(url))
            print(
                f"{lang:8} {url:44} {r.status_code}  median {took * 1000:7.1f} ms"
                f"  (CPU {timed.cpu * 1000:6.1f} ms)"
            )
    client = Client(HTTP_HOST="localhost")
    client.login(username="lead", password=DEMO_PASSWORD)
    for slug in ("recipients", "demand", "records"):
        for fmt in ("csv", "xlsx"):
            url = f"/ledgers/{slug}.{fmt}?month={month}"
            took, r = timed(lambda url=url: client.get(url), runs=1)
            rows = r.content.count(b"\n") - 1 if fmt == "csv" else "-"
            print(
                f"export {slug:10} ledger {month} {fmt.upper():4}: {took:.2f} s, "
                f"{len(r.content):,} bytes, rows {rows}"
            )
    for lang in ("zh-hans", "en"):
        took, pdf = timed(lambda lang=lang: render_pdf(Scope(last), lang), runs=3)
        print(f"monthly report PDF ({lang}): median {took:.2f} s, {len(pdf):,} bytes")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
