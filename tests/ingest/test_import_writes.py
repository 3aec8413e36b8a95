"""An import's store writes run beside its reading (one in flight): a write that fails still
fails the import, and nothing is reported stored that is not."""

from pathlib import Path

import pytest

from lianxin.ingest.models import ImportRun
from lianxin.ingest.pipeline import import_file
from lianxin.ingest.readers import Options
from lianxin.store import open_stores

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "ingest"

pytestmark = pytest.mark.django_db


def test_a_store_write_that_fails_in_the_writer_fails_the_import(tmp_path, settings):
    settings.LIANXIN_HOME = tmp_path
    settings.TIME_ZONE = "Asia/Shanghai"
    readings = tmp_path / "readings"
    readings.mkdir()
    # The fixture's days as plain files: the store cannot make its day folders there.
    for day in ("2024-02-29", "2024-03-01"):
        (readings / f"day={day}").write_text("not a folder")
    with pytest.raises(OSError):
        import_file(
            FIXTURES / "registers_long.xlsx",
            Options(time_zone="Asia/Shanghai"),
            register_unknown=True,
            home=tmp_path,
        )
    run = ImportRun.objects.get()
    assert run.finished_at is not None and run.accepted == 0
    # Recorded as failed, with why: the data-health page must not show it as imported.
    assert run.status == ImportRun.Status.FAILED, run.status
    assert run.message.startswith("stopped: ") and "Error" in run.message, run.message
    assert not list(readings.glob("day=*/*.parquet"))


def test_the_same_file_twice_is_stored_once(tmp_path, settings):
    settings.LIANXIN_HOME = tmp_path
    settings.TIME_ZONE = "Asia/Shanghai"
    path = FIXTURES / "registers_long.xlsx"
    first = import_file(path, Options(time_zone="Asia/Shanghai"), register_unknown=True)
    again = import_file(path, Options(time_zone="Asia/Shanghai"), register_unknown=True)
    assert first.total().accepted > 0 and not first.rejected
    assert again.total().accepted == 0 and again.total().replaced == 0
    assert again.total().duplicate == first.total().accepted
    assert {k: v.accepted for k, v in first.written.items()} == {
        k: v.duplicate for k, v in again.written.items()
    }
    stored = open_stores(tmp_path).readings.read()
    assert stored.height == first.total().accepted
