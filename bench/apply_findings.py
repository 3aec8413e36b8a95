"""apply_findings on the demo town with notification channels configured (SQLite, a fresh
temporary data directory, or DATABASE_URL): N no_power findings about N enrolled homes opened in
one step, channels for the duty room (a signed webhook and an SMS gateway that texts the
rostered operator) and the team lead. Prints the wall and CPU time per finding (CPU: the
stable figure on a loaded machine), the SQL queries per finding and the outbox rows written.
Nothing is sent (no worker runs).

    .venv/bin/python bench/apply_findings.py [N_FINDINGS] [RUNS]
"""

import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["LIANXIN_HOME"] = tempfile.mkdtemp(prefix="lianxin-bench-apply-")
os.environ["DJANGO_SETTINGS_MODULE"] = "lianxin.web.settings"


def main(n: int, runs: int) -> None:
    from lianxin.web.setup import migrate, setup_django

    setup_django()
    migrate()
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from lianxin.alerts.models import Alert
    from lianxin.alerts.service import apply_findings
    from lianxin.care.models import CareRecipient, Team
    from lianxin.care.seed import seed_demo_town
    from lianxin.engine.findings import Finding
    from lianxin.notify.models import Channel, Notification, RosterShift

    seed_demo_town(households=max(600, n * 6))
    body = '{"to": "{to}", "text": "{text}", "key": "{key}"}'
    Channel.objects.create(name="duty room", kind="webhook", url="http://127.0.0.1:9/", secret="b")
    Channel.objects.create(name="lead", kind="webhook", url="http://127.0.0.1:9/", audience="lead")
    Channel.objects.create(
        name="duty sms", kind="sms", url="http://127.0.0.1:9/", options={"body": body}
    )
    from django.contrib.auth import get_user_model

    now = datetime.now(UTC)
    operator = get_user_model().objects.get(username="operator")
    for team in Team.objects.all():
        RosterShift.objects.create(
            team=team, user=operator, starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=12),
        )  # fmt: skip
    people = (
        CareRecipient.objects.filter(consents__scope="monitoring")
        .select_related("household")
        .distinct()
    )
    homes = list(dict.fromkeys(p.household for p in people))[:n]
    per, cpu, queries = [], [], []
    for run in range(runs):
        # The same homes each run, their alerts of the run before closed (no re-raise check),
        # and findings that start at another moment: each run opens n new alerts.
        closed = {"status": "resolved", "resolved_at": now}
        if any(f.name == "reraise_pending" for f in Alert._meta.get_fields()):
            closed["reraise_pending"] = False  # (the tree before the mark has no such field)
        Alert.objects.update(**closed)
        started = now - timedelta(minutes=20 + run)
        findings = [
            Finding(kind="no_power", severity="critical", started_at=started,
                    detected_at=now, reason_en="bench", reason_zh="测试", household_id=h.code)
            for h in homes
        ]  # fmt: skip
        rows0 = Notification.objects.count()
        reset_queries()
        with CaptureQueriesContext(connection) as q:
            t0, c0 = time.perf_counter(), time.process_time()
            alerts = apply_findings(findings)
            took, used = time.perf_counter() - t0, time.process_time() - c0
        rows = Notification.objects.count() - rows0
        per.append(took / len(findings) * 1000)
        cpu.append(used / len(findings) * 1000)
        queries.append(len(q.captured_queries) / len(findings))
        print(
            f"run {run + 1}: {len(findings)} findings, {len(alerts)} alerts opened, {rows} outbox "
            f"rows, {took:.2f} s ({used:.2f} s CPU): {per[-1]:.1f} ms ({cpu[-1]:.1f} ms CPU) and "
            f"{queries[-1]:.1f} queries per finding"
        )
    print(
        f"apply_findings ({connection.vendor}, {n} findings per step, {runs} runs): median "
        f"{median(per):.1f} ms ({median(cpu):.1f} ms CPU) per finding, {median(queries):.1f} "
        f"queries per finding"
    )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*(args + [100, 3][len(args) :]))
