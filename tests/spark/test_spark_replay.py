"""`lianxin spark replay` in Spark local mode equals the in-process replay, and a run continued
from its snapshots equals one run over the whole period.

Small data (10 homes of the London sample in two transformer areas, 3 weeks, a grid outage in
one area): the point is the sharding, the shared priors and the snapshots, not the volume.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from lianxin.cli import main
from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.priors import combine, learn_figures, learn_priors
from lianxin.engine.replay import replay
from lianxin.meterdata import epoch_seconds
from lianxin.spark.shard import findings_of
from tests.services import require_program

pytestmark = pytest.mark.once

SAMPLE = Path(__file__).parents[1] / "data" / "lcl_sample.parquet"
TZ = "Asia/Shanghai"
PRIOR_DAYS = 15


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = pl.read_parquet(SAMPLE)
    homes = sorted(d["household_id"].unique())[:10]
    start = d["ts"].min()
    d = d.filter(pl.col("household_id").is_in(homes) & (pl.col("ts") < start + timedelta(days=21)))
    areas = {h: "TA-A" if i < 5 else "TA-B" for i, h in enumerate(homes)}
    # Area A's supply fails for three hours on day 18: every home there reads zero.
    out_from, out_to = start + timedelta(days=17, hours=10), start + timedelta(days=17, hours=13)
    in_a = pl.col("household_id").is_in([h for h, a in areas.items() if a == "TA-A"])
    during = (pl.col("ts") >= out_from) & (pl.col("ts") < out_to)
    d = d.with_columns(kwh=pl.when(in_a & during).then(0.0).otherwise(pl.col("kwh")))
    topo = pl.DataFrame({"household_id": list(areas), "transformer_area": list(areas.values())})
    # The meters say so too; and one home of area B reports a power cut at the very instant
    # where the continued run below splits the period (it belongs to the first run).
    a_homes = [h for h, a in areas.items() if a == "TA-A"]
    split = start + timedelta(days=17, hours=11)
    events = pl.DataFrame(
        {
            "household_id": [*a_homes, *a_homes, homes[7], homes[7]],
            "ts": [out_from] * 5 + [out_to] * 5 + [split, split + timedelta(minutes=30)],
            "event": ["power_off"] * 5 + ["power_on"] * 5 + ["power_off", "power_on"],
        }
    )
    root = tmp_path_factory.mktemp("spark")
    events.write_csv(root / "events.csv")
    d.with_columns(day=pl.col("ts").dt.date()).write_parquet(root / "readings", partition_by="day")
    topo.write_csv(root / "topology.csv")
    return root, d, topo, events, start


def order(r: dict) -> tuple:
    # Shards report the findings of one instant in their own order: compare as sets in order.
    return r["detected_at"], r["finding_id"], r["event"]


def rows(findings) -> list[dict]:
    return sorted((f.to_dict() for f in findings), key=order)


def spark_findings(out: Path) -> list[dict]:
    return rows(findings_of(pl.read_parquet(out / "findings" / "*.parquet")))


def spark(root: Path, out: str, *extra: str) -> None:
    # 3 shards: the two areas fall in two of them (CRC-32 of their names), one stays empty.
    args = ["spark", "replay", "--readings", str(root / "readings"), "--topology",
            str(root / "topology.csv"), "--events", str(root / "events.csv"),
            "--out", str(root / out), "--master", "local[2]",
            "--shards", "3", "--prior-days", str(PRIOR_DAYS), "--tz", TZ, *extra]  # fmt: skip
    assert main(args) == 0


def test_spark_replay_equals_the_in_process_replay_and_continues_from_its_snapshots(data, capsys):
    require_program("java", "openjdk-17-jre-headless")
    root, d, topo, events, start = data
    until = int(epoch_seconds(d["ts"], TZ).min()) + PRIOR_DAYS * 86400
    priors = learn_priors(d, until, EngineConfig(tz=TZ))
    # Sharing matters here: one area's homes alone would learn other priors than all of them.
    area_a = topo.filter(pl.col("transformer_area") == "TA-A")["household_id"]
    alone = combine([learn_figures(d.filter(pl.col("household_id").is_in(area_a.implode())), until,
                                   EngineConfig(tz=TZ))])  # fmt: skip
    assert alone != priors

    eng = Engine(EngineConfig(tz=TZ))
    eng.pin_priors(*priors.values())
    want = rows(replay(d, topology=topo, events=events, engine=eng))
    kinds = {r["kind"] for r in want}
    assert {"grid_outage", "inactivity"} <= kinds, kinds

    spark(root, "whole")
    assert spark_findings(root / "whole") == want

    # The same period in two runs: the second continues from the first one's snapshots.
    split = (start + timedelta(days=17, hours=11)).isoformat()  # inside the outage
    spark(root, "first", "--until", split)
    spark(root, "second", "--continue-from", str(root / "first"))
    both = spark_findings(root / "first") + spark_findings(root / "second")
    assert sorted(both, key=order) == want

    # Bad input: one line naming the household, the field and the value; nothing written.
    bad = d.with_columns(kwh=pl.when(pl.int_range(pl.len()) == 300).then(-1.0).otherwise("kwh"))
    bad.write_parquet(root / "bad.parquet")
    home = bad["household_id"][300]
    args = ["spark", "replay", "--readings", str(root / "bad.parquet"), "--out", str(root / "x"),
            "--master", "local[2]", "--shards", "3", "--tz", TZ]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("lianxin spark: ") and "Traceback" not in err
    assert f"kwh -1.0 for household {home}" in err, err
    assert not (root / "x").exists()
    assert main([*args[:5], str(root / "whole"), *args[6:]]) == 1
    assert "already exists" in capsys.readouterr().err
    assert spark_findings(root / "first") != want


def test_spark_replay_reads_the_store_itself_with_corrections_and_unknown_meters(data, capsys):
    """`--store` reads a data directory as Lianxin stores it (keyed by meter, a unit per row,
    corrections as later versions) and finds what the in-process replay finds."""
    require_program("java", "openjdk-17-jre-headless")
    from lianxin.store import open_stores

    root, d, topo, events, start = data
    until = int(epoch_seconds(d["ts"], TZ).min()) + PRIOR_DAYS * 86400
    eng = Engine(EngineConfig(tz=TZ))
    eng.pin_priors(*learn_priors(d, until, EngineConfig(tz=TZ)).values())
    want = rows(replay(d, topology=topo, events=events, engine=eng))

    stores = open_stores(root / "home")
    meter = pl.col("household_id").str.replace(r"^", "M-")
    # The sample's times are local (TZ); the store keeps UTC instants.
    utc = pl.col("ts").dt.replace_time_zone(TZ).dt.convert_time_zone("UTC")
    as_stored = d.select(meter=meter, ts=utc, value=pl.col("kwh") * 1000, unit=pl.lit("Wh"))
    # Every 7th reading first arrives wrong and is corrected by a later write.
    wrong = as_stored.gather_every(7).with_columns(value=pl.col("value") + 5000)
    stores.readings.write(wrong)
    stores.readings.write(as_stored)
    # A meter nobody registered, and a voltage curve the engine does not judge.
    stray = as_stored.head(48).with_columns(meter=pl.lit("STRAY-1"))
    volts = as_stored.head(48).with_columns(value=pl.lit(231.0), unit=pl.lit("V"))
    stores.readings.write(pl.concat([stray, volts]))
    stores.events.write(events.select(meter=meter, ts=utc, event="event", detail=pl.lit("")))
    meters = topo.select(
        meter=meter, household_id="household_id", meter_kind=pl.lit("electricity"),
        transformer_area="transformer_area", account=pl.lit(None, pl.String),
    )  # fmt: skip
    meters.write_parquet(root / "meters.parquet")

    args = ["spark", "replay", "--store", str(root / "home"), "--meters",
            str(root / "meters.parquet"), "--out", str(root / "from-store"), "--master",
            "local[2]", "--shards", "3", "--prior-days", str(PRIOR_DAYS), "--tz", TZ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"replayed {d.height:,} readings" in out, out
    assert "not judged: 48 readings of meters not in" in out, out
    assert spark_findings(root / "from-store") == want

    # A nightly run continued from the last one reads only the days after its clock.
    split = (start + timedelta(days=17, hours=11)).isoformat()
    first = [*args[:7], str(root / "s1"), *args[8:], "--until", split]
    assert main(first) == 0
    # (The first week's files are unreadable now: a run that opened them would fail.)
    for day in sorted((root / "home" / "readings").glob("day=*"))[:7]:
        for f in day.glob("*.parquet"):
            f.write_bytes(b"not parquet")
    second = [*args[:7], str(root / "s2"), *args[8:], "--continue-from", str(root / "s1")]
    assert main(second) == 0, capsys.readouterr().err[-2000:]
    both = spark_findings(root / "s1") + spark_findings(root / "s2")
    assert sorted(both, key=order) == want
    # A run that must read those files names the first one it could not read, in one line.
    assert main([*args[:7], str(root / "s3"), *args[8:]]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("lianxin spark: cannot read file:") and "/day=2013-01-" in err, err
    assert "is not a Parquet file" in err and " at org.apache" not in err, err

    # --store without --meters, or an empty data directory: said in one line.
    assert main(args[:4] + args[6:]) == 1
    assert "--store needs --meters" in capsys.readouterr().err
    (root / "empty").mkdir()
    args[3], args[7] = str(root / "empty"), str(root / "none")
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no readings there" in err and "Traceback" not in err, err
