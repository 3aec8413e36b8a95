"""Duty-room figures on the demo town (240 homes): how long apply_findings takes for a burst of
findings, and how long the operator's pages take to render with the alerts they open.

    .venv/bin/python bench/duty_room.py [N_FINDINGS]     (default 200)

Runs in a fresh temporary data directory (SQLite), in both languages.
"""

import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

os.environ["LIANXIN_HOME"] = tempfile.mkdtemp(prefix="lianxin-bench-duty-")
os.environ["DJANGO_SETTINGS_MODULE"] = "lianxin.web.settings"


def main(n: int) -> None:
    from lianxin.web.setup import migrate, setup_django

    setup_django()
    migrate()
    from django.test import Client

    from lianxin.alerts.service import apply_findings
    from lianxin.care.models import Household
    from lianxin.care.seed import DEMO_PASSWORD, seed_demo_town
    from lianxin.engine.findings import Finding

    seed_demo_town(households=max(240, n))
    now = datetime.now(UTC)
    kinds = ["no_power", "inactivity", "high_load", "data_gap", "voltage"]
    homes = list(Household.objects.order_by("code")[:n])
    findings = [
        Finding(kind=kinds[i % 5], severity=["critical", "warning", "info"][i % 3],
                started_at=now - timedelta(minutes=7 * i + 5), detected_at=now,
                reason_en="bench", reason_zh="测试", household_id=h.code)
        for i, h in enumerate(homes)
    ]  # fmt: skip
    t = time.perf_counter()
    opened = apply_findings(findings)
    took = time.perf_counter() - t
    # Alerts open only for homes whose resident consented to monitoring.
    print(
        f"apply_findings: {n} findings -> {len(opened)} new alerts (homes with consent) in "
        f"{took:.2f} s ({n / took:,.0f} findings/s)"
    )
    t = time.perf_counter()
    apply_findings(findings)
    print(f"apply_findings again (idempotent): {time.perf_counter() - t:.2f} s")
    for lang in ("zh-hans", "en"):
        client = Client(HTTP_ACCEPT_LANGUAGE=lang, HTTP_HOST="localhost")
        client.login(username="operator", password=DEMO_PASSWORD)
        client.get("/alerts/")  # warm templates and catalogues
        for url in [
            "/alerts/",
            "/alerts/queue.json",
            "/alerts/1/",
            f"/households/{homes[0].code}/",
        ]:
            runs = []
            for _ in range(5):
                t = time.perf_counter()
                status = client.get(url).status_code
                runs.append(time.perf_counter() - t)
            print(f"{lang:8} {url:28} {status}  median {sorted(runs)[2] * 1000:6.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
