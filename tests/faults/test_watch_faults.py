"""`lianxin watch` under attack and bad luck: links are refused unread, a planted failed/ link
stops nothing but itself, summaries never quote a refused or failed file, and a file that makes
the readers crash moves to failed/ so the files after it are imported."""

import os
import stat
from datetime import datetime

import polars as pl
import pytest

from lianxin.commands.watch import poll
from lianxin.errors import LianxinError
from lianxin.ingest.models import ImportRun
from lianxin.ingest.readers import Options
from lianxin.store import open_stores

pytestmark = pytest.mark.django_db

SECRET = "Zk3-the-secret-key-value-0123456789"
GOOD = "meter,ts,value,unit\nM1,2026-01-01 00:15,0.5,kWh\n"


@pytest.fixture
def home(tmp_path, settings):
    settings.LIANXIN_HOME = tmp_path / "home"
    settings.TIME_ZONE = "Asia/Shanghai"
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def watch_once(drop):
    return poll(drop, {}, Options(time_zone="Asia/Shanghai"), register_unknown=True, settle=False)


def everything_written(drop) -> str:
    texts = [p.read_text(errors="replace") for p in drop.rglob("*.summary.txt")]
    texts += list(ImportRun.objects.values_list("message", flat=True))
    return "\n".join(texts)


def test_links_are_refused_unread_and_never_quoted(home, tmp_path):
    secret = home / "secret_key"
    secret.write_text(SECRET + "\n")
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "key.csv").symlink_to(secret)
    (drop / "passwd.csv").symlink_to("/etc/passwd")
    os.link(secret, drop / "hard.csv")
    (drop / "good.csv").write_text(GOOD)
    assert watch_once(drop) == 4
    for name in ("key.csv", "passwd.csv", "hard.csv"):
        assert os.path.lexists(drop / "failed" / name)
        summary = (drop / "failed" / f"{name}.summary.txt").read_text()
        assert "REFUSED" in summary
    assert (drop / "failed" / "key.csv").is_symlink()  # the link moved, not its target
    assert secret.read_text().strip() == SECRET
    written = everything_written(drop)
    assert SECRET not in written and "root:" not in written
    for summary in drop.rglob("*.summary.txt"):
        assert stat.S_IMODE(summary.stat().st_mode) == 0o600
    assert stat.S_IMODE((drop / "failed").stat().st_mode) == 0o700
    assert open_stores(home).readings.read()["meter"].to_list() == ["M1"]


def test_a_failed_file_is_not_quoted_in_its_summary_or_import_run(home, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "notes.csv").write_text(SECRET + "\nsecond line\n")
    assert watch_once(drop) == 1
    assert (drop / "failed" / "notes.csv").exists()
    assert "FAILED" in (drop / "failed" / "notes.csv.summary.txt").read_text()
    assert SECRET not in everything_written(drop)


def test_a_planted_failed_link_is_refused_and_moves_nothing_into_the_store(home, tmp_path):
    day = home / "readings" / "day=2026-01-01"
    day.mkdir(parents=True)
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "failed").symlink_to(day)
    (drop / "junk.csv").write_bytes(b"\x00\x01garbage")
    with pytest.raises(LianxinError, match="failed"):
        watch_once(drop)
    assert list(day.iterdir()) == []
    assert (drop / "junk.csv").exists()


def test_a_file_that_crashes_the_readers_goes_to_failed_and_the_next_is_imported(home, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    # A list column: it made the readers raise and `watch` exit, and a restart crashed again.
    pl.DataFrame(
        {"meter": ["M1"], "ts": [datetime(2026, 1, 1)], "value": [[1.0, 2.0]], "unit": ["kWh"]}
    ).write_parquet(drop / "a_list.parquet")
    (drop / "b_good.csv").write_text(GOOD)
    assert watch_once(drop) == 2
    assert (drop / "failed" / "a_list.parquet").exists() or (
        drop / "done" / "a_list.parquet"
    ).exists()
    assert (drop / "done" / "b_good.csv").exists()
    assert not any(p.is_file() for p in drop.iterdir())
    assert open_stores(home).readings.read()["meter"].to_list() == ["M1"]
