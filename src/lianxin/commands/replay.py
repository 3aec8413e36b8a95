"""`lianxin replay`: run recorded meter data through the engine, causally, and write findings.

Reads the files (Parquet or CSV), hands frames to lianxin.engine.replay (which does no I/O) and
writes one JSON line per finding event: raised, and later resolved with the same finding_id.
"""

from lianxin.commands.progress import add_quiet, bar, ticks


def add_arguments(parser):
    parser.add_argument(
        "--readings",
        required=True,
        help="Parquet or CSV, long format: household_id, ts (interval start; naive = local "
        "time), quantity (kWh; m³ for water and gas) or kwh (electricity only); optional "
        "meter_kind (electricity/water/gas)",
    )
    parser.add_argument("--topology", help="CSV or Parquet: household_id, transformer_area")
    parser.add_argument(
        "--events", help="CSV or Parquet: household_id, ts, event (power_off, power_on, ...)"
    )
    parser.add_argument(
        "--payments", help="CSV or Parquet: household_id, ts, amount and/or balance"
    )
    parser.add_argument(
        "--settings",
        help="CSV or Parquet: household_id, sensitivity (low/normal/high), quiet_start, "
        "quiet_end (HH:MM), away_from, away_to",
    )
    parser.add_argument(
        "--tz",
        help="time zone of naive timestamps (default: LIANXIN_TIME_ZONE, else Asia/Shanghai)",
    )
    parser.add_argument(
        "--prior-days",
        type=int,
        help="learn the population priors once, over every home, from the first N days, and pin "
        "them (as `lianxin spark replay` does: the same findings); default: relearned hourly",
    )
    parser.add_argument("--out", required=True, help="findings, one JSON object per line")
    add_quiet(parser)


def run(args) -> int:
    import time
    from collections import Counter
    from pathlib import Path

    from lianxin.atomic import atomic_write
    from lianxin.engine.replay import replay
    from lianxin.meterdata import deployment_zone

    frames = {
        name: _read(getattr(args, name), name)
        for name in ("readings", "topology", "events", "payments", "settings")
        if getattr(args, name)
    }
    t0 = time.perf_counter()
    tz = args.tz or deployment_zone()
    readings = frames.pop("readings")
    engine = None
    if args.prior_days is not None:
        engine = _pinned_engine(readings, tz, args.prior_days)
    with bar(unit=" ticks", desc="replay", quiet=args.quiet) as b:
        findings = replay(readings, tz=tz, progress=ticks(b), engine=engine, **frames)
    elapsed = time.perf_counter() - t0
    out = Path(args.out)
    with atomic_write(out, "w", encoding="utf-8") as f:
        f.writelines(finding.to_json() + "\n" for finding in findings)
    raised = Counter(str(x.kind) for x in findings if x.event == "raised")
    summary = ", ".join(f"{k} {v}" for k, v in sorted(raised.items())) or "none"
    print(f"replayed in {elapsed:.1f} s; findings raised: {summary}; wrote {out}")
    return 0


def _pinned_engine(readings, tz: str, days: int):
    from lianxin.engine.config import EngineConfig
    from lianxin.engine.core import Engine
    from lianxin.engine.inputs import InputError, epoch_seconds
    from lianxin.engine.priors import learn_priors
    from lianxin.errors import LianxinError

    if days < 1:
        raise LianxinError(f"--prior-days {days}: give a whole number of at least 1")
    if "ts" not in readings.columns or readings.height == 0:
        raise InputError("readings: no rows, or no column 'ts'")
    until = int(epoch_seconds(readings["ts"], tz, "readings").min()) + days * 86400
    engine = Engine(EngineConfig(tz=tz))
    engine.pin_priors(*learn_priors(readings, until, EngineConfig(tz=tz)).values())
    return engine


def _read(path: str, name: str):
    from pathlib import Path

    import polars as pl

    from lianxin.errors import LianxinError

    p = Path(path)
    if not p.is_file():
        raise LianxinError(f"--{name}: no such file {path}")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pl.read_parquet(p)
        # Identifiers stay text ("007" is not 7); times are parsed by the engine's reader.
        overrides = {"household_id": pl.Utf8, "transformer_area": pl.Utf8, "ts": pl.Utf8}
        overrides.update({"meter": pl.Utf8, "account": pl.Utf8})  # 表号/户号: "007" is not 7
        overrides.update({c: pl.Utf8 for c in ("away_from", "away_to", "quiet_start", "quiet_end")})
        return pl.read_csv(p, schema_overrides=overrides, infer_schema_length=10000)
    except pl.exceptions.PolarsError as exc:
        raise LianxinError(f"{path}: cannot read as {p.suffix or 'CSV'}: {exc}") from exc
