"""The resident search, the map's data and the wall screen's figures at town and city size: a
demo town of N households (default 10,000) with a year of history, then the time of each page.

    .venv/bin/python bench/wall.py [HOUSEHOLDS]        (default 10000)

Runs in a fresh temporary data directory: SQLite by default, or DATABASE_URL if set (use an
empty database of your own). Times are medians of 5 requests after one warm-up request.
"""

import os
import statistics
import sys
import tempfile
import time

os.environ["LIANXIN_HOME"] = tempfile.mkdtemp(prefix="lianxin-bench-wall-")
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

    from lianxin.alerts.models import Alert
    from lianxin.care.models import CareRecipient
    from lianxin.care.seed import DEMO_PASSWORD, seed_demo_town
    from lianxin.ledgers.demo import seed_history

    t = time.perf_counter()
    seed_demo_town(households=households, areas=max(10, households // 200))
    seed_history(now=timezone.now())
    print(
        f"town: {households:,} households, {CareRecipient.objects.count():,} care recipients, "
        f"{Alert.objects.count():,} alerts ({time.perf_counter() - t:.1f} s to seed)"
    )
    User.objects.filter(username__in=["operator", "field1", "wall"]).update(
        password=make_password(DEMO_PASSWORD)
    )
    person = CareRecipient.objects.select_related("household").order_by("pk").last()
    meter = person.household.meters.first()
    db = "PostgreSQL" if "postgres" in os.environ.get("DATABASE_URL", "") else "SQLite"
    print(f"database: {db}")
    for user, urls in [
        (
            "operator",
            [
                f"/residents/?q={person.name}",
                f"/residents/?q={meter.number}",
                f"/residents/?q={person.phone}",
                "/residents/?q=东坡区",
                "/residents/",
                "/map/data.json",
            ],
        ),
        ("field1", [f"/residents/?q={person.name}", "/residents/"]),
        ("wall", ["/wall/", "/wall/data.json", "/map/data.json"]),
    ]:
        client = Client(HTTP_HOST="localhost")
        assert client.login(username=user, password=DEMO_PASSWORD)
        for url in urls:
            took, r = timed(lambda url=url, client=client: client.get(url))
            print(
                f"{user:8} {url:44} {r.status_code}  median {took * 1000:7.1f} ms"
                f"  {len(r.content):>9,} bytes"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
