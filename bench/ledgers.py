"""Ledger figures at scale: a town of 10,000 households with a year of records (alerts worked
through the case steps, work orders, calls, inspections, activities, a campaign), then the time
of the dashboard and of each ledger page (target <= 300 ms) and of the monthly PDF (<= 10 s).

    .venv/bin/python bench/ledgers.py [HOUSEHOLDS]        (default 10000)

Runs in a fresh temporary data directory: SQLite by default, or DATABASE_URL if set (use an
empty database of your own). Times are medians of 5 requests after one warm-up request.
"""

import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta

os.environ["LIANXIN_HOME"] = tempfile.mkdtemp(prefix="lianxin-bench-ledgers-")
os.environ["DJANGO_SETTINGS_MODULE"] = "lianxin.web.settings"


def timed(fn, runs=5):
    fn()  # warm templates, catalogues and the database's caches
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out), result


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
        ]:
            took, r = timed(lambda url=url, client=client: client.get(url))
            print(f"{lang:8} {url:44} {r.status_code}  median {took * 1000:7.1f} ms")
    client = Client(HTTP_HOST="localhost")
    client.login(username="lead", password=DEMO_PASSWORD)
    for fmt in ("csv", "xlsx"):
        took, r = timed(lambda fmt=fmt: client.get(f"/ledgers/demand.{fmt}?month={month}"), runs=1)
        print(
            f"export demand ledger {month} {fmt.upper():4}: {took:.2f} s, {len(r.content):,} bytes"
        )
    for lang in ("zh-hans", "en"):
        took, pdf = timed(lambda lang=lang: render_pdf(Scope(last), lang), runs=3)
        print(f"monthly report PDF ({lang}): median {took:.2f} s, {len(pdf):,} bytes")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
