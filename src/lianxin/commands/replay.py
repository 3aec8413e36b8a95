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
    write_findings(findings, out)
    raised = Counter(str(x.kind) for x in findings if x.event == "raised")
    summary = ", ".join(f"{k} {v}" for k, v in sorted(raised.items())) or "none"
    print(f"replayed in {elapsed:.1f} s; findings raised: {summary}; wrote {out}")
    return 0


# From this many findings, a forked copy of the process writes the second half's lines while
# this one writes the first half's: wording and encoding them is most of writing a replay's
# findings (44 k findings: 0.55 s -> 0.35 s on two cores).
FORK_WRITER_FROM = 10_000


def write_findings(findings: list, out) -> None:
    """One JSON line per finding, in order, to `out`, durably (lianxin.atomic). The second half
    of a long list is written by a forked copy of this process into a part file, copied in
    after the first half; if the copy cannot be made or fails, this process writes that half
    itself: the file is the same either way."""
    import os
    import signal
    from pathlib import Path

    from lianxin.atomic import atomic_write

    out = Path(out)
    half, pid = len(findings), None
    part = out.with_name(f".{out.name}.part")
    if len(findings) >= FORK_WRITER_FROM and hasattr(os, "fork") and (os.cpu_count() or 1) > 1:
        half = len(findings) // 2
        pid = _forked_writer(findings[half:], part)
    try:
        with atomic_write(out, "w", encoding="utf-8") as f:
            f.writelines(x.to_json() + "\n" for x in findings[:half])
            rest = findings[half:]
            if pid is not None:
                _, status = os.waitpid(pid, 0)
                pid = None
                if os.waitstatus_to_exitcode(status) == 0:
                    f.flush()
                    with open(part, "rb") as lines:
                        while chunk := lines.read(1 << 20):
                            f.buffer.write(chunk)
                    rest = []
            f.writelines(x.to_json() + "\n" for x in rest)
    finally:
        if pid is not None:  # this process failed first: stop the copy
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        part.unlink(missing_ok=True)


def _forked_writer(findings: list, part) -> int | None:
    """Fork a copy of this process that writes these findings' lines to `part` and exits 0
    (non-zero if anything went wrong); None if no copy could be made. The copy only formats
    Python values already in memory and writes one file: nothing it does takes a lock another
    thread of this process (polars' pool, a progress bar) could have held when it forked."""
    import os

    try:
        pid = os.fork()
    except OSError:
        return None
    if pid:
        return pid
    import gc

    gc.disable()  # (no collection in the copy: an object's finaliser could touch shared files)
    code = 1
    try:
        with open(part, "w", encoding="utf-8") as f:
            f.writelines(x.to_json() + "\n" for x in findings)
        code = 0
    finally:
        os._exit(code)  # no cleanup of the parent's state: it is the parent's


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
