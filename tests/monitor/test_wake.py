"""`lianxin monitor` steps when new data is stored, not only at its timer: with --lateness 0 a
power-cut reading is an alert long before the next timer step (--every 600 here)."""

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from lianxin.store import open_stores
from tests.ingest.test_api_server import Site
from tests.services import subprocess_db_rows

pytestmark = [pytest.mark.once, pytest.mark.slow]
SAMPLE = Path(__file__).parents[1] / "data" / "lcl_sample.parquet"
HOMES = ["MAC000002", "MAC000003", "MAC000005", "MAC000007"]


def test_a_stored_power_cut_wakes_the_monitor_before_its_timer(tmp_path):
    site = Site(tmp_path / "home", meters=0)
    now = datetime.now(UTC)
    df = pl.read_parquet(SAMPLE).filter(pl.col("household_id").is_in(HOMES))
    df = df.with_columns(ts=pl.col("ts").dt.replace_time_zone("UTC"))
    last = now.replace(minute=0, second=0, microsecond=0)
    df = df.with_columns(ts=pl.col("ts") + (last - datetime(2013, 2, 18, tzinfo=UTC))).filter(
        (pl.col("ts") >= last - timedelta(days=7)) & (pl.col("ts") < last)
    )
    meter = pl.col("household_id").replace_strict({h: f"M{i}" for i, h in enumerate(HOMES)})
    stores = open_stores(site.home)
    stores.readings.write(df.select(meter=meter, ts="ts", value="kwh", unit=pl.lit("kWh")))
    site.lianxin(
        "manage",
        "shell",
        "-c",
        "from datetime import datetime, UTC\n"
        "from lianxin.care.models import *\n"
        f"for i, code in enumerate({HOMES!r}):\n"
        "    h = Household.objects.create(code=code, address=code)\n"
        "    Meter.objects.create(number=f'M{i}', account_number=f'A{i}', household=h,"
        " interval_minutes=30)\n"
        f"p = CareRecipient.objects.create(name='du', birth_year=1935,"
        f" household=Household.objects.get(code={HOMES[0]!r}))\n"
        "Consent.objects.create(care_recipient=p, scope='monitoring',"
        " given_at=datetime(2024, 5, 1, tzinfo=UTC), given_by='self')\n",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "lianxin", "monitor", "--lateness", "0", "--every", "600"]
        + ["--history-days", "7"],
        env=site.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert "judged to" in proc.stdout.readline()  # the first step: learned the history
        time.sleep(1)
        # Mr. Du's meter reads zero for the half hour that ends now.
        end = datetime.now(UTC).replace(microsecond=0)
        stores.readings.write(
            pl.DataFrame(
                {"meter": ["M0"], "ts": [end - timedelta(minutes=30)], "value": [0.0]}
            ).with_columns(unit=pl.lit("kWh"))
        )
        alerts = []
        deadline = time.monotonic() + 120  # bounded; far below the 600 s timer
        while not alerts and time.monotonic() < deadline:
            time.sleep(0.5)
            alerts = subprocess_db_rows(
                site.env, site.home, "SELECT kind FROM alerts_alert WHERE kind = 'no_power'"
            )
        assert alerts == [("no_power",)]
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=60)
