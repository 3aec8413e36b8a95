"""`lianxin spark registry`: the database's meters and residents' settings as the files a
`spark replay --store` run reads (its tasks have no database)."""

import polars as pl
import pytest

from lianxin.care.models import CareRecipient, Meter
from lianxin.cli import main
from tests.alerts.helpers import town

pytestmark = pytest.mark.django_db


def test_registry_writes_every_meter_with_its_home_area_and_account(tmp_path, capsys):
    town()
    m, s = tmp_path / "meters.parquet", tmp_path / "settings.parquet"
    assert main(["spark", "registry", "--meters", str(m), "--settings", str(s)]) == 0
    meters = pl.read_parquet(m)
    active = Meter.objects.filter(active=True)
    assert meters.height == active.count() > 0
    one = active.select_related("household__transformer_area").first()
    row = meters.filter(pl.col("meter") == one.number).row(0, named=True)
    assert row == {
        "meter": one.number,
        "household_id": one.household.code,
        "meter_kind": one.kind,
        "interval_s": one.interval_minutes * 60,
        "transformer_area": one.household.transformer_area.code,
        "account": one.account_number,
        "resolution_kwh": one.resolution_kwh,
    }
    assert pl.read_parquet(s).height == CareRecipient.objects.count()
    assert f"wrote {meters.height:,} meters of" in capsys.readouterr().out
