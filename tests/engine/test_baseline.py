"""The usual band drawn behind a home's curve: its own history by local time of day, or the
population prior when it has little."""

from datetime import timedelta

import polars as pl

from lianxin.engine.baseline import usual_band
from tests.engine.curves import STANDBY, at, home


def test_band_follows_the_home_own_routine():
    hist = home("h", 21, seed=4)
    band = usual_band(hist, at(21, 0), at(22, 0), "Asia/Shanghai")
    assert band.height == 48 and band.columns == ["ts", "low", "high"]
    assert str(band["ts"].dtype) == "Datetime(time_unit='us', time_zone='UTC')"
    night = band[4]  # 02:00 local
    evening = band[40]  # 20:00 local
    assert STANDBY <= night["low"][0] <= night["high"][0] < 0.1
    assert evening["low"][0] > 0.3  # the home is always busy at 20:00
    assert (band["low"] <= band["high"]).all()


def test_band_uses_only_history_before_start():
    hist = home("h", 21, seed=4)
    spiky = pl.concat([hist, home("h", 3, seed=5, start=at(21, 0)).with_columns(kwh=pl.lit(9.0))])
    a = usual_band(hist, at(21, 0), at(21, 12), "Asia/Shanghai")
    b = usual_band(spiky, at(21, 0), at(21, 12), "Asia/Shanghai")
    assert a.equals(b)


def test_a_new_home_gets_the_population_prior():
    hist = home("h", 1, seed=4)
    band = usual_band(hist, at(1, 0), at(1, 0) + timedelta(hours=24), "Asia/Shanghai")
    assert band.height == 48
    assert band["high"].max() <= 1.0 and band["low"].min() > 0  # a generic home, kWh per 30 min
