"""`import --register-unknown` keeps the household code rule: an account that would make a code
with '/', '..', '?' or '#' registers nothing and the summary says why."""

import pytest

from lianxin.care.models import Household, Meter
from lianxin.ingest.pipeline import import_file
from lianxin.ingest.readers import Options

pytestmark = pytest.mark.django_db


def test_register_unknown_refuses_codes_that_break_the_rule(tmp_path, settings):
    settings.LIANXIN_HOME = tmp_path
    path = tmp_path / "accounts.csv"
    path.write_text(
        "表号,户号,时间,值\n"
        "M-OK,ACC-1,2024-03-01 00:00,0.1\n"
        "M-SLASH,ACC/10,2024-03-01 00:00,0.1\n"
        "M-DOTS,../../etc,2024-03-01 00:00,0.1\n"
        "M-QUERY,ACC10?x=1#f,2024-03-01 00:00,0.1\n",
        encoding="utf-8",
    )
    summary = import_file(path, Options(time_zone="Asia/Shanghai"), register_unknown=True)
    assert list(Household.objects.values_list("code", flat=True)) == ["ACC-1"]
    assert list(Meter.objects.values_list("number", flat=True)) == ["M-OK"]
    text = "\n".join(summary.lines())
    assert "breaks the code rule" in text and "M-SLASH" in text
    assert summary.rejected.get("unknown_meter") == 3
