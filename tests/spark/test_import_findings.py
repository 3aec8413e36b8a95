"""`lianxin import-findings`: a findings Parquet folder becomes alerts, once."""

from datetime import timedelta

import polars as pl
import pytest

from lianxin.alerts.models import Alert, AppliedFinding
from lianxin.cli import main
from lianxin.spark.shard import findings_frame
from tests.alerts.helpers import NOW, cared_home, enroll, finding, town

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_import_findings_opens_alerts_once_and_clears_them(tmp_path, capsys):
    town()
    home = enroll(cared_home())
    started = NOW - timedelta(hours=3)
    raised = finding(home, "no_power", started=started, detected=NOW - timedelta(hours=2))
    resolved = finding(home, "no_power", "info", started=started, event="resolved")
    other = finding(home, "inactivity", "warning", started=NOW - timedelta(hours=9))
    folder = tmp_path / "run" / "findings"
    folder.mkdir(parents=True)
    # Two shards' files, the resolution in the other file than its raise: order is by time.
    findings_frame([resolved], 1).write_parquet(folder / "part-00001.parquet")
    findings_frame([raised, other], 0).write_parquet(folder / "part-00000.parquet")

    assert main(["import-findings", str(tmp_path / "run")]) == 0
    assert "3 findings read; 3 applied" in capsys.readouterr().out
    alerts = {a.kind: a for a in Alert.objects.filter(household=home)}
    assert set(alerts) == {"no_power", "inactivity"}
    assert alerts["no_power"].condition_cleared_at is not None
    assert alerts["inactivity"].condition_cleared_at is None
    before = (Alert.objects.count(), AppliedFinding.objects.count())

    assert main(["import-findings", str(folder)]) == 0
    assert "3 findings read; 0 applied (3 applied before)" in capsys.readouterr().out
    assert (Alert.objects.count(), AppliedFinding.objects.count()) == before


def test_import_findings_names_what_is_wrong_with_its_input(tmp_path, capsys):
    pl.DataFrame({"household_id": ["h1"]}).write_parquet(tmp_path / "x.parquet")
    assert main(["import-findings", str(tmp_path / "x.parquet")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lianxin import-findings: {tmp_path / 'x.parquet'}: not a findings")
    assert "finding_id" in err and "\n" not in err
    assert main(["import-findings", str(tmp_path / "none")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
