from __future__ import annotations

import ctypes
import fcntl
import io
import json
import logging
import math
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from lianxin import meterdata
from lianxin.atomic import atomic_write
from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.findings import Finding
from lianxin.errors import LianxinError
from lianxin.store import open_stores
from lianxin.store.wake import registry_stamp

log = logging.getLogger(__name__)


@dataclass
class StepReport:
    now: datetime
    judged_to: datetime | None = None  # the engine's clock after the step: now - lateness
    readings: int = 0
    unknown_meters: int = 0
    skipped_units: int = 0
    events: int = 0
    findings: list[Finding] = field(default_factory=list)
    alerts: int = 0
    outcomes: int = 0  # alert outcomes handed to the engine to learn from
    skipped: list = field(default_factory=list)  # (finding, reason) not applied: unknown home…
    # Where the step's time went: registry, read, engine, journal, alerts, checkpoint (s).
    seconds: dict = field(default_factory=dict)


class Monitor:
    """One monitor per data directory (a lock file makes sure of that).

    `lateness`: how long after an interval ends its reading may still arrive and be judged.
    The engine's clock trails the wall clock by it; a reading that arrives later still lands
    in the store, but the engine has moved past its interval and does not learn from it.

    The engine's state on disk is a checkpoint plus a journal (monitor/journal/): each step
    writes what it handed the engine (registry changes, settings, outcomes, readings, events,
    payments, the clock) as one small record before its findings are applied, and the whole
    state is written only every `checkpoint_every` (and on close). A restart restores the
    checkpoint and steps the engine through the records after it, exactly as they were
    stepped, so it loses and repeats nothing; the findings of those records are applied again
    and apply_findings skips those already applied (idempotent on finding_id). At a million
    homes the state is ~4.7 GiB, which takes seconds to write: a state larger than
    `background_bytes` is written by a forked child from a copy-on-write image of the process,
    while the parent goes on stepping.

    The registry (meters, homes, residents' settings) is read from the database on start, when
    the data directory's registry stamp moves (lianxin.store.wake, stamped by the web app on a
    change), when a home, meter or resident is added in bulk (an import sends no signal), and
    every `resync_every` in any case; only what changed is handed to the engine.
    """

    def __init__(
        self,
        home: Path,
        tz: str,
        history_days: int = 28,
        lateness: timedelta = timedelta(0),
        *,
        checkpoint_every: timedelta = timedelta(minutes=10),
        resync_every: timedelta = timedelta(minutes=30),
        background_bytes: int = 256 * 2**20,
    ):
        if lateness < timedelta(0):
            raise LianxinError(f"lateness must not be negative, got {lateness}")
        self.home = Path(home)
        self.tz = tz
        self.lateness = lateness
        self.checkpoint_every = checkpoint_every
        self.resync_every = resync_every
        self.background_bytes = background_bytes
        self.stores = open_stores(self.home)
        self.dir = self.home / "monitor"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "engine.state"
        self.journal_dir = self.dir / "journal"
        self.journal_dir.mkdir(exist_ok=True)
        self.history = timedelta(days=history_days)
        self._lock = open(self.dir / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LianxinError(f"another monitor is already running on {self.home}") from exc
        self._child: tuple[int, int] | None = None  # (pid, seq) of a background checkpoint
        self._recover()

    def close(self):
        """Write the state (a clean stop restarts without a journal to step through)."""
        try:
            if not self._lock.closed:
                self._wait_child()
                if self.seq != self._checkpointed_seq:
                    self._checkpoint_now()
        finally:
            self._lock.close()

    # ---- the state on disk: checkpoint + journal -------------------------------------------

    def _recover(self) -> None:
        """The engine as the checkpoint and the journal after it leave it; findings of the
        journaled steps go to `_pending`, to be applied (again) with the next step's."""
        self._forget_registry()
        self._pending: list[Finding] = []
        if self.state_path.exists():
            self.engine = Engine.restore(self.state_path)
            base = int(self.engine.extra.get("seq", 0))
        else:
            self.engine = Engine(EngineConfig(tz=self.tz))
            base = 0
        seq = base
        for path in sorted(self.journal_dir.glob("*.rec")):
            n = int(path.stem)
            if n <= base:
                path.unlink(missing_ok=True)  # checkpointed; left by a stop before removing it
                continue
            if n != seq + 1:
                raise LianxinError(
                    f"{path}: the monitor's journal jumps from step {seq} to {n}; the engine "
                    f"state cannot be rebuilt past step {seq}"
                )
            findings, apply = self._replay(path)
            if apply:
                self._pending += findings
            seq = n
        self.seq = self._checkpointed_seq = base
        self.seq = seq
        self._last_checkpoint = time.monotonic()
        if self.engine.cfg.tz != self.tz:
            # The deployment's zone wins over the one the state was saved with: routines
            # learned in the old local hours are relearned within history_days.
            log.warning(
                "engine state was saved with time zone %s; following LIANXIN_TIME_ZONE=%s",
                self.engine.cfg.tz,
                self.tz,
            )
            self.engine.set_time_zone(self.tz)

    def _journal(self, record: dict[str, pl.DataFrame | None], now: int, apply: bool) -> None:
        """Write one step's engine inputs durably, as record seq + 1."""
        frames = {k: v for k, v in record.items() if v is not None and v.height}
        header = {"now": now, "tz": self.engine.cfg.tz, "apply": apply, "frames": {}}
        blobs = []
        for name, frame in frames.items():
            buf = io.BytesIO()
            frame.write_ipc(buf, compression="lz4")
            header["frames"][name] = buf.tell()
            blobs.append(buf.getbuffer())
        path = self.journal_dir / f"{self.seq + 1:012d}.rec"
        with atomic_write(path) as fh:
            fh.write(json.dumps(header).encode() + b"\n")
            for blob in blobs:
                fh.write(blob)
        self.seq += 1

    def _replay(self, path: Path) -> tuple[list[Finding], bool]:
        """Step the engine through one journal record, as the step that wrote it did."""
        with open(path, "rb") as fh:
            header = json.loads(fh.readline())
            frames = {name: pl.read_ipc(io.BytesIO(fh.read(size))) for name, size in
                      header["frames"].items()}  # fmt: skip
        eng = self.engine
        if header["tz"] != eng.cfg.tz:
            eng.set_time_zone(header["tz"])
        if "register" in frames:
            eng.register(frames["register"])
        if "settings" in frames:
            eng.apply_settings(frames["settings"])
        if "feedback" in frames:
            eng.feedback(frames["feedback"])
        findings = eng.step(
            frames.get("readings", _EMPTY_READINGS),
            header["now"],
            events=frames.get("events"),
            payments=frames.get("payments"),
        )
        return findings, header["apply"]

    def _maybe_checkpoint(self) -> None:
        self._reap()
        if self._child is not None or self.seq == self._checkpointed_seq:
            return
        if time.monotonic() - self._last_checkpoint < self.checkpoint_every.total_seconds():
            return
        if self.engine.state_bytes() < self.background_bytes:
            self._checkpoint_now()
        else:
            self._checkpoint_in_background()

    def _checkpoint_now(self) -> None:
        self._wait_child()
        with atomic_write(self.state_path) as f:
            self.engine.snapshot(f, extra={"seq": self.seq})
        self._checkpointed(self.seq)

    def _checkpoint_in_background(self) -> None:
        """fork(): the child writes the state as it is at this instant (copy-on-write pages,
        so only what the parent changes meanwhile is copied) and exits; the parent goes on."""
        seq, parent = self.seq, os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: nothing but the write (no database, no logging, no locks)
            code = 1
            try:
                _die_with_parent(parent)
                tmp = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}.tmp")
                with atomic_write(self.state_path, tmp=tmp) as f:
                    self.engine.snapshot(f, extra={"seq": seq})
                code = 0
            finally:
                os._exit(code)
        self._child = (pid, seq)
        self._last_checkpoint = time.monotonic()

    def _reap(self, block: bool = False) -> None:
        if self._child is None:
            return
        pid, seq = self._child
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if done == 0:
            return
        self._child = None
        if os.waitstatus_to_exitcode(status) == 0:
            self._checkpointed(seq)
        else:
            log.error("the background checkpoint of step %s failed; retried later", seq)
            for tmp in self.dir.glob(".engine.state.*.tmp"):
                tmp.unlink(missing_ok=True)

    def _wait_child(self) -> None:
        self._reap(block=True)

    def _checkpointed(self, seq: int) -> None:
        self._checkpointed_seq = seq
        self._last_checkpoint = time.monotonic()
        for path in self.journal_dir.glob("*.rec"):
            if int(path.stem) <= seq:
                path.unlink(missing_ok=True)

    # ---- the care database -> the engine's registry ----------------------------------------

    def _forget_registry(self) -> None:
        self.meters = pl.DataFrame()
        self.accounts = pl.DataFrame()
        self._settings: pl.DataFrame | None = None  # the settings handed to the engine
        self._stamp = None
        self._counts = None
        self._synced_at = -math.inf
        self._record: dict[str, pl.DataFrame | None] = {}

    def _registry_counts(self) -> tuple:
        """The newest row of each registry table: moves with a bulk import, which sends no
        signal (deletions do send one). An index lookup, not a count of a million rows."""
        from django.db.models import Max

        from lianxin.care.models import CareRecipient, Household, Meter

        return tuple(
            m.objects.aggregate(top=Max("pk"))["top"] for m in (Meter, Household, CareRecipient)
        )

    def registry_changed(self) -> bool:
        """Whether the registry must be read again (see the class docstring)."""
        if self.meters.is_empty():
            return True
        if time.monotonic() - self._synced_at >= self.resync_every.total_seconds():
            return True
        if registry_stamp(self.home) != self._stamp:
            return True
        return self._registry_counts() != self._counts

    def sync_registry(self) -> None:
        """Register every active meter's home with the engine and apply per-person settings;
        only homes new to the engine (or moved to another area) and settings that changed are
        handed over. Away periods are not handed to the engine: the alerts layer silences and
        releases alerts by them (see Engine.apply_settings)."""
        from lianxin.care.models import CareRecipient, Meter, with_replaced

        self._stamp = registry_stamp(self.home)  # before reading: a change during it counts
        self._counts = self._registry_counts()
        self._synced_at = time.monotonic()
        rows = list(
            with_replaced(Meter.objects).values_list(
                "number",
                "account_number",
                "household__code",
                "kind",
                "interval_minutes",
                "household__transformer_area__code",
            )
        )
        if not rows:
            self.meters = pl.DataFrame(
                schema={
                    "meter": pl.String,
                    "household_id": pl.String,
                    "meter_kind": pl.String,
                    "interval_s": pl.Int64,
                }
            )
            return
        number, account, household, kind, minutes, area = zip(*rows, strict=True)
        self.meters = pl.DataFrame(
            {
                "meter": list(number),
                "household_id": list(household),
                "meter_kind": list(kind),
                "interval_s": [m * 60 for m in minutes],
                "transformer_area": list(area),
            },
            schema_overrides={"transformer_area": pl.String},
        )
        self.accounts = pl.DataFrame(
            {"account": list(account), "household_id": list(household)}
        ).unique("account", keep="first")
        homes = self.meters.unique(
            ["household_id", "meter_kind"], keep="first", maintain_order=True
        )
        fresh = self._unregistered(homes.drop("meter"))
        if fresh.height:
            self.engine.register(fresh)
            self._add_to_record("register", fresh)
        settings = pl.DataFrame(
            [
                {
                    "household_id": code,
                    "sensitivity": sensitivity,
                    "quiet_start": _hhmm(start),
                    "quiet_end": _hhmm(end),
                }
                for code, sensitivity, start, end in CareRecipient.objects.values_list(
                    "household__code", "sensitivity", "quiet_hours_start", "quiet_hours_end"
                )
            ],
            schema=_SETTINGS,
        )
        settings = settings.filter(pl.col("household_id").is_in(list(self.engine.index)))
        changed = (
            settings
            if self._settings is None
            else settings.join(self._settings, on=settings.columns, how="anti", nulls_equal=True)
        )
        if changed.height:
            self.engine.apply_settings(changed)
            self._add_to_record("settings", changed)
        self._settings = settings

    def _unregistered(self, homes: pl.DataFrame) -> pl.DataFrame:
        """The rows of `homes` the engine does not have, or has in another transformer area."""
        eng = self.engine
        keyed = homes.with_columns(
            key=pl.when(pl.col("meter_kind") == "electricity")
            .then(pl.col("household_id"))
            .otherwise(pl.col("household_id") + "#" + pl.col("meter_kind"))
        ).join(eng._idmap(), on="key", how="left")
        rows = keyed["row"].fill_null(-1).to_numpy()
        known = rows >= 0
        codes = np.full(len(rows), -1, np.int64)
        codes[known] = eng.a.area[rows[known]]
        names = pl.Series([*eng.area_names, None], dtype=pl.String)
        current = names.gather(np.where(codes >= 0, codes, len(eng.area_names)))
        moved = pl.col("transformer_area").is_not_null() & pl.col("transformer_area").ne_missing(
            pl.lit(current)
        )
        return keyed.filter(pl.col("row").is_null() | moved).drop("key", "row")

    def _add_to_record(self, name: str, frame: pl.DataFrame) -> None:
        held = self._record.get(name)
        self._record[name] = frame if held is None else pl.concat([held, frame], how="diagonal")

    # ---- one step --------------------------------------------------------------------------

    def step(
        self,
        now: datetime | None = None,
        *,
        raise_alerts: bool = True,
        progress=None,
        alerts_at: datetime | None = None,
    ) -> StepReport:
        """Feed the engine everything that arrived for (its clock, now - lateness] and apply
        the findings. `progress(done, total)`: see Engine.step. `alerts_at`: when the alerts
        are raised (default: the wall clock); the demo's catch-up over past quarter-hours
        raises each at its own time, as if the monitor had been running then."""
        now = (now or datetime.now(UTC)).astimezone(UTC)
        report = StepReport(now=now)
        now = now - self.lateness
        report.judged_to = now
        lap = _Laps(report.seconds)
        try:
            if self.registry_changed():
                self.sync_registry()
            lap("registry")
            clock = (
                datetime.fromtimestamp(self.engine.now, UTC)
                if self.engine.now is not None
                else now - self.history
            )
            longest = (
                timedelta(seconds=int(self.meters["interval_s"].max() or 3600))
                if len(self.meters)
                else timedelta(hours=1)
            )
            fed_back, feedback = self._feedback()
            # From just after clock - longest: a reading starting exactly then ended at the
            # clock (judged already); only a longer interval could still be running.
            after = clock - longest + timedelta(microseconds=1)
            readings = self._readings(after, now, clock, report)
            events = self._events(clock, now, report)
            payments = self._payments(clock, now)
            lap("read")
            findings = self.engine.step(
                readings, now, events=events, payments=payments, progress=progress
            )
            lap("engine")
            record = {
                **self._record,
                "feedback": feedback,
                "readings": readings,
                "events": events,
                "payments": payments,
            }
            now_s = int(now.timestamp())
            if readings.height > max(4 * self.engine.n, 1_000_000):
                # A first start or a catch-up after a long stop (weeks of readings): the state
                # is written whole instead of a record as big as the history.
                self.seq += 1
                self._checkpoint_now()
            else:
                self._journal(record, now_s, raise_alerts)
            self._record = {}
            lap("journal")
        except Exception:
            # The engine may be half-way through the step: back to the state on disk, and the
            # registry is read again (what this step handed over is not on disk). (An
            # interrupt ends the process: the next start recovers the same way.)
            self._recover()
            raise
        report.findings = findings
        if raise_alerts:
            from lianxin.alerts.service import apply_findings

            self._pending += findings
            # Every step, findings or not: apply_findings also ends expired away periods and
            # checks closes against the data (one indexed query each when there is nothing).
            # A failure here (the database down) keeps the findings pending for the next step.
            report.alerts = len(
                apply_findings(self._pending, now=alerts_at, skipped=report.skipped)
            )
        self._pending = []
        if fed_back:
            # Marked only once the record that hands them over is on disk; a crash in
            # between hands them over again, and the engine counts one alarm only once.
            from lianxin.alerts.models import Alert

            Alert.objects.filter(pk__in=fed_back).update(fed_back_at=report.now)
        report.outcomes = len(fed_back)
        lap("alerts")
        self._maybe_checkpoint()
        lap("checkpoint")
        return report

    def _feedback(self) -> tuple[list[int], pl.DataFrame | None]:
        """Hand the engine the outcomes the duty room recorded since the last step."""
        from lianxin.alerts.models import Alert

        rows = list(
            Alert.objects.filter(
                fed_back_at__isnull=True, household__isnull=False, resolved_at__isnull=False
            )
            .exclude(outcome="")
            .values_list("pk", "household__code", "kind", "started_at", "outcome")
        )
        if not rows:
            return [], None
        pk, household, kind, started, outcome = zip(*rows, strict=True)
        frame = pl.DataFrame(
            {
                "household_id": list(household),
                "kind": list(kind),
                "started_at": [int(t.timestamp()) for t in started],
                "outcome": list(outcome),
            }
        )
        self.engine.feedback(frame)
        return list(pk), frame

    def _readings(self, start, end, clock, report: StepReport) -> pl.DataFrame:
        raw = self.stores.readings.read(None, start, end, ordered=False)
        if raw.is_empty():
            return _EMPTY_READINGS
        # Interval quantities in the kind's base unit (kWh, m³), by the contract's unit table.
        quantities = meterdata.interval_quantities(raw)
        report.skipped_units = raw.height - quantities.height
        joined = quantities.join(self.meters, on="meter", how="left")
        report.unknown_meters = joined["household_id"].null_count()
        joined = joined.drop_nulls("household_id")
        # Only intervals that end after the engine's clock are new to it.
        joined = joined.filter(
            pl.col("ts") + pl.duration(seconds=pl.col("interval_s")) > pl.lit(clock)
        )
        out = joined.group_by("household_id", "meter_kind", "ts").agg(
            pl.col(meterdata.QUANTITY).sum()
        )
        report.readings = out.height
        return out

    def _events(self, start, end, report: StepReport) -> pl.DataFrame | None:
        raw = self.stores.events.read(None, start, end)
        if raw.is_empty():
            return None
        ev = raw.join(self.meters.select("meter", "household_id"), on="meter", how="inner")
        names = ev.with_columns(event=meterdata.engine_event(pl.col("event"), pl.col("detail")))
        names = names.drop_nulls("event").filter(pl.col("ts") > start)
        report.events = names.height
        return names.select("household_id", "ts", "event") if names.height else None

    def _payments(self, start, end) -> pl.DataFrame | None:
        pay = self.stores.payments.read(None, start, end)
        bal = self.stores.balances.read(None, start, end)
        parts = []
        if not pay.is_empty() and not self.accounts.is_empty():
            parts.append(
                pay.join(self.accounts, on="account", how="inner")
                .filter(pl.col("ts") > start)
                .select("household_id", "ts", "amount", balance=pl.lit(None, pl.Float64))
            )
        if not bal.is_empty():
            parts.append(
                bal.join(self.meters.select("meter", "household_id"), on="meter", how="inner")
                .filter(pl.col("ts") > start)
                .select("household_id", "ts", amount=pl.lit(None, pl.Float64), balance="balance")
            )
        parts = [p for p in parts if p.height]
        return pl.concat(parts).sort("ts") if parts else None


def _hhmm(value) -> str | None:
    return value.strftime("%H:%M") if value else None


_EMPTY_READINGS = pl.DataFrame(
    schema={
        "household_id": pl.String,
        "ts": pl.Datetime("us", "UTC"),
        meterdata.QUANTITY: pl.Float64,
        "meter_kind": pl.String,
    }
)
_SETTINGS = {
    "household_id": pl.String,
    "sensitivity": pl.String,
    "quiet_start": pl.String,
    "quiet_end": pl.String,
}


class _Laps:
    def __init__(self, into: dict):
        self.into, self.t = into, time.perf_counter()

    def __call__(self, name: str) -> None:
        t = time.perf_counter()
        self.into[name] = round(self.into.get(name, 0.0) + t - self.t, 4)
        self.t = t


def _die_with_parent(parent: int) -> None:
    """A background checkpoint dies with the monitor (kill -9 included): an orphan finishing
    later could put an older state over a newer one that a restarted monitor wrote."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)
