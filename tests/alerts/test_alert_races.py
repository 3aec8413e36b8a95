"""Two writers opening the same alert at the same instant: two monitor processes (or a monitor
and a second one started by mistake on another host) apply findings about one home together, on a
real database shared between real processes. Neither fails, and the home has one open alert.

Round one: the very same finding (both engines saw the same thing). Round two: two different
findings of one kind about one home (same alert key, different finding ids).
"""

import subprocess
import sys

from tests.services import subprocess_db_rows, subprocess_env

HOMES = 30
SETUP = f"HOMES = {HOMES}\n" + """
from datetime import UTC, datetime
from lianxin.care.models import CareRecipient, Consent, Household
for i in range(HOMES):
    home = Household.objects.create(code=f"H{i}", address=f"三苏路{i}号")
    person = CareRecipient.objects.create(name="杜德明", birth_year=1935, household=home)
    Consent.objects.create(care_recipient=person, scope="monitoring",
                           given_at=datetime(2024, 5, 1, tzinfo=UTC), given_by="本人")
"""

RACER = f"HOMES = {HOMES}\n" + """
import os, sys, time
from datetime import UTC, datetime, timedelta
from lianxin.alerts.service import apply_findings
from lianxin.engine.findings import Finding
go, minute = os.environ["RACE_GO"], int(os.environ["RACE_MINUTE"])
started = datetime(2026, 11, 27, 3, minute, tzinfo=UTC)
findings = [
    Finding(kind="no_power", severity="critical", started_at=started,
            detected_at=started + timedelta(minutes=30), reason_en="x", reason_zh="x",
            household_id=f"H{i}")
    for i in range(HOMES)
]
from lianxin.alerts.models import Alert
Alert.objects.exists()  # connected and warmed up before the start signal
print("RACER READY", flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.0005)
for finding in findings:  # one transaction each, as the monitor applies them: many chances to meet
    apply_findings([finding])
print("applied", flush=True)
"""


def manage_shell(env, code, **extra):
    return subprocess.Popen(
        [sys.executable, "-m", "lianxin", "manage", "shell", "-c", code],
        env={**env, **extra},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def race(env, tmp_path, name, minutes) -> list[tuple[int, str]]:
    go = tmp_path / f"go-{name}"
    racers = [manage_shell(env, RACER, RACE_GO=str(go), RACE_MINUTE=str(m)) for m in minutes]
    for r in racers:
        # (The shell may print a line of its own first.)
        for line in r.stdout:
            if line.strip() == "RACER READY":
                break
        else:
            stdout, stderr = r.communicate(timeout=60)
            raise AssertionError(f"a racer died before the start: {stderr}")
    go.touch()
    out = []
    for r in racers:
        stdout, stderr = r.communicate(timeout=120)
        out.append((r.returncode, stderr.strip().splitlines()[-1:] if stderr.strip() else ""))
    return out


def test_two_writers_opening_the_same_alert_at_once(tmp_path):
    env = subprocess_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "lianxin", "init"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    setup = manage_shell(env, SETUP)
    assert setup.wait(timeout=120) == 0, setup.stderr.read()

    def open_alerts():
        return subprocess_db_rows(
            env,
            tmp_path,
            "SELECT a.key FROM alerts_alert a WHERE a.status <> 'resolved' ORDER BY a.key",
        )

    results = race(env, tmp_path, "same", [0, 0])
    assert [code for code, _ in results] == [0, 0], results
    assert sorted(open_alerts()) == sorted((f"no_power|H{i}",) for i in range(HOMES))
    [(applied,)] = subprocess_db_rows(env, tmp_path, "SELECT count(*) FROM alerts_appliedfinding")
    assert applied == HOMES

    # Resolve it, then race two different findings that share the alert key.
    resolve = manage_shell(
        env,
        "from django.utils import timezone\n"
        "from lianxin.alerts.models import Alert\n"
        "Alert.objects.update(status='resolved', resolved_at=timezone.now())",
    )
    assert resolve.wait(timeout=120) == 0, resolve.stderr.read()
    results = race(env, tmp_path, "two", [10, 20])
    assert [code for code, _ in results] == [0, 0], results
    assert sorted(open_alerts()) == sorted((f"no_power|H{i}",) for i in range(HOMES))
