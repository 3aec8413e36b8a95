from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import io
import json
import logging
import math
import os
import signal
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from lianxin import meterdata
from lianxin.atomic import atomic_write, fsync_dir
from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.findings import Finding
from lianxin.errors import LianxinError
from lianxin.store import open_stores
from lianxin.store.wake import REGISTRY_STAMP, registry_changes

log = logging.getLogger(__name__)

# Homes named by the web's edits since the last step read one by one, up to this many; more
# (a burst of edits by a script) and the whole registry is read.
SYNC_HOMES_MAX = 500


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
    while the parent goes on stepping. The state it replaces is kept as engine.state.prev (a
    hard link, no copy), with the records after it, so a damaged checkpoint is not the end.

    What a crash or a damaged disk can leave is handled at start (_recover), never by stopping
    for good: the temporaries of writes that never finished (kill -9 mid-write; never
    acknowledged) are removed; a record that cannot be read (cut short, or its checksum
    wrong), a hole in the journal or a damaged checkpoint is moved to monitor/damaged/ with a
    log line and a record in damaged/log.jsonl naming the file and why (the data-health page
    shows it), and the engine starts from what is sound: the checkpoint (else the previous one,
    else a first start that learns again from the readings store) and the sound records after
    it. Nothing accepted is lost: the readings, events and payments of the steps set aside are
    in the store, and the next step reads from the engine's clock, so it judges them again; the
    registry and settings are read again at start; findings already applied are skipped; the
    duty room's outcomes those steps handed over are handed over again.

    The registry (meters, homes, residents' settings) is read from the database on start, when
    the data directory's registry stamp moves (lianxin.store.wake, stamped by the web app on a
    change, and by imports on their bulk writes), when a home, meter or resident is added in
    bulk (the newest row moves), and every `resync_every` in any case (a change made with SQL
    by hand); only what changed is handed to the engine. An edit in the web app names its
    homes in the stamp: only those are read again. At a million homes a full read costs
    ~3–4 s of a step: a bulk import, or the safety net every 6 hours, not every edit.
    """

    def __init__(
        self,
        home: Path,
        tz: str,
        history_days: int = 28,
        lateness: timedelta = timedelta(0),
        *,
        checkpoint_every: timedelta = timedelta(minutes=10),
        resync_every: timedelta = timedelta(hours=6),
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
        self.prev_path = self.dir / "engine.state.prev"
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

    def _recover(self, dropped: bool = False) -> None:
        """The engine as the checkpoint and the journal after it leave it; findings of the
        journaled steps go to `_pending`, to be applied (again) with the next step's. What
        cannot be read is set aside (see the class docstring); `dropped`: records were set
        aside already by a call before this one."""
        self._forget_registry()
        self._pending: list[Finding] = []
        self._remove_unfinished_writes()
        self.engine, base = self._restore_checkpoint()
        paths = sorted(self.journal_dir.glob("*.rec"), key=_record_number)
        bad = [(p, "not a journal record's name") for p in paths if _record_number(p) < 0]
        paths = [p for p in paths if _record_number(p) >= 0]
        seq = base
        for i, path in enumerate(paths):
            n = _record_number(path)
            if n <= base:
                continue  # before the checkpoint: kept for the previous one (removed later)
            if n != seq + 1:
                why = (
                    f"the journal jumps from step {seq} to {path.name}: nothing after step "
                    f"{seq} can be rebuilt"
                )
                bad += [(p, why) for p in paths[i:]]
                break
            try:
                header, frames = _read_record(path)
            except _Damaged as exc:
                bad.append((path, str(exc)))
                bad += [(p, _AFTER.format(path.name)) for p in paths[i + 1 :]]
                break
            try:
                findings = self._step_record(header, frames)
            except (MemoryError, PermissionError):
                raise  # not damage: the machine or the operator must act
            except Exception as exc:  # noqa: BLE001 - a record the engine cannot take
                # The engine may be half-way through it: set it and the rest aside, and start
                # again from the checkpoint with the records before it.
                why = f"the engine could not step through it: {_why(exc)}"
                self._set_aside(
                    [(path, why)] + [(p, _AFTER.format(path.name)) for p in paths[i + 1 :]]
                )
                return self._recover(dropped=True)
            if header["apply"]:
                self._pending += findings
            seq = n
        if bad or dropped:
            # Before the files are moved: if the database is down the next start sees the same.
            self._hand_over_outcomes_again()
        self._set_aside(bad)
        self.seq = self._checkpointed_seq = self._prev_seq = base
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

    def _restore_checkpoint(self) -> tuple[Engine, int]:
        """The engine of the newest sound checkpoint and its journal position; a damaged one is
        set aside. With none: a new engine (the first step learns from the readings store)."""
        for path in (self.state_path, self.prev_path):
            if not path.exists():
                continue
            try:
                engine = Engine.restore(path)
                return engine, int(engine.extra.get("seq", 0))
            except (MemoryError, PermissionError):
                raise  # not damage: the machine or the operator must act
            except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes numpy raise
                self._set_aside([(path, f"the engine state cannot be read: {_why(exc)}")])
        return Engine(EngineConfig(tz=self.tz)), 0

    def _remove_unfinished_writes(self) -> None:
        """Temporaries of writes a kill cut short (a journal record, a checkpoint: as big as
        the state). They were never renamed into place, so nothing relied on them."""
        running = f".engine.state.{self._child[0]}.tmp" if self._child else None
        for tmp in [*self.dir.glob(".engine.state*.tmp"), *self.journal_dir.glob(".*.tmp")]:
            if tmp.name != running:
                log.warning("monitor: removing %s, a write that never finished", tmp)
                tmp.unlink(missing_ok=True)

    def _set_aside(self, items: list[tuple[Path, str]]) -> None:
        """Move damaged files to monitor/damaged/ and say so: a log line and a record in
        damaged/log.jsonl (file, moved_to, day, at, reason), as the store does for its files."""
        if not items:
            return
        folder = self.dir / "damaged"
        folder.mkdir(exist_ok=True)
        for path, why in items:
            dest = folder / path.name
            k = 1
            while dest.exists():  # a name used again after a first start from the store
                dest, k = folder / f"{path.name}.{k}", k + 1
            try:
                os.replace(path, dest)
            except FileNotFoundError:
                continue
            at = datetime.now(UTC)
            record = {
                "file": str(path.relative_to(self.dir)),
                "moved_to": str(dest.relative_to(self.dir)),
                "day": at.date().isoformat(),
                "at": at.isoformat(timespec="seconds"),
                "reason": why,
            }
            with open(folder / "log.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            log.error("monitor: damaged %s set aside to %s: %s", path, dest, why)
        fsync_dir(folder)
        fsync_dir(self.journal_dir)
        fsync_dir(self.dir)

    def _hand_over_outcomes_again(self) -> None:
        """Outcomes handed to the engine by steps now lost were marked fed back: mark them not,
        so the next step hands them over again (the engine counts one alarm only once). Those
        steps came after the engine's clock; a new engine learns every outcome again."""
        from lianxin.alerts.models import Alert

        marked = Alert.objects.filter(fed_back_at__isnull=False)
        if self.engine.now is not None:
            marked = marked.filter(fed_back_at__gte=datetime.fromtimestamp(self.engine.now, UTC))
        n = marked.update(fed_back_at=None)
        if n:
            log.warning("monitor: %d alert outcomes will be handed to the engine again", n)

    def _journal(self, record: dict[str, pl.DataFrame | None], now: int, apply: bool) -> None:
        """Write one step's engine inputs durably, as record seq + 1: a first line with a
        CRC-32 of the rest (so a record cut short or changed on disk is known as such), the
        header (JSON) and the frames (Arrow IPC)."""
        frames = {k: v for k, v in record.items() if v is not None and v.height}
        header = {"now": now, "tz": self.engine.cfg.tz, "apply": apply, "frames": {}}
        blobs = []
        for name, frame in frames.items():
            buf = io.BytesIO()
            frame.write_ipc(buf, compression="lz4")
            header["frames"][name] = buf.tell()
            blobs.append(buf.getbuffer())
        head = json.dumps(header).encode() + b"\n"
        crc = zlib.crc32(head)
        for blob in blobs:
            crc = zlib.crc32(blob, crc)
        path = self.journal_dir / f"{self.seq + 1:012d}.rec"
        with atomic_write(path) as fh:
            fh.write(_MAGIC + b"%08x\n" % crc)
            fh.write(head)
            for blob in blobs:
                fh.write(blob)
        self.seq += 1

    def _step_record(self, header: dict, frames: dict[str, pl.DataFrame]) -> list[Finding]:
        """Step the engine through one journal record, as the step that wrote it did."""
        eng = self.engine
        if header["tz"] != eng.cfg.tz:
            eng.set_time_zone(header["tz"])
        if "register" in frames:
            eng.register(frames["register"])
        if "settings" in frames:
            eng.apply_settings(frames["settings"])
        if "feedback" in frames:
            eng.feedback(frames["feedback"])
        return eng.step(
            frames.get("readings", _EMPTY_READINGS),
            header["now"],
            events=frames.get("events"),
            payments=frames.get("payments"),
        )

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
        self._keep_previous()
        with atomic_write(self.state_path) as f:
            self.engine.snapshot(f, extra={"seq": self.seq})
        self._checkpointed(self.seq)

    def _checkpoint_in_background(self) -> None:
        """fork(): the child writes the state as it is at this instant (copy-on-write pages,
        so only what the parent changes meanwhile is copied) and exits; the parent goes on."""
        seq, parent = self.seq, os.getpid()
        self._keep_previous()
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

    def _keep_previous(self) -> None:
        """The checkpoint on disk becomes engine.state.prev before a new one replaces it: a
        hard link (no copy; the disk holds two states). The records after it are kept until
        the next checkpoint, so a damaged checkpoint falls back to the one before."""
        if not self.state_path.exists():
            return  # set aside at start, or none yet: the previous one stays as it is
        tmp = self.dir / ".engine.state.prev.tmp"
        tmp.unlink(missing_ok=True)
        os.link(self.state_path, tmp)
        os.replace(tmp, self.prev_path)
        fsync_dir(self.dir)
        self._prev_seq = self._checkpointed_seq

    def _checkpointed(self, seq: int) -> None:
        self._checkpointed_seq = seq
        self._last_checkpoint = time.monotonic()
        for path in self.journal_dir.glob("*.rec"):
            if _record_number(path) <= self._prev_seq:
                path.unlink(missing_ok=True)

    # ---- the care database -> the engine's registry ----------------------------------------

    def _forget_registry(self) -> None:
        self.meters = pl.DataFrame()
        self.accounts = pl.DataFrame()
        self._registry = pl.DataFrame()  # meters_frame() as last read, in meter number order
        self._settings: pl.DataFrame | None = None  # the settings handed to the engine
        self._stamp_at = 0  # bytes of the registry stamp file read
        self._counts = None
        self._synced_at = -math.inf
        self._one_meter_each = False
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
        """Whether anything of the registry must be read again (see the class docstring)."""
        return self._registry_change()[0] != set()

    def _registry_change(self) -> tuple[set[str] | None, int, tuple]:
        """(what to read again: the household codes, or None for the whole registry; the
        stamp file offset and newest rows to remember once it is read). A web edit names its
        home (lianxin.health.apps): reading that home costs milliseconds where the whole
        registry costs seconds at a million homes."""
        if self.meters.is_empty():
            return None, 0, ()
        if time.monotonic() - self._synced_at >= self.resync_every.total_seconds():
            return None, 0, ()
        offset, homes = registry_changes(self.home, self._stamp_at)
        if homes is None or len(homes) > SYNC_HOMES_MAX:
            return None, 0, ()
        counts = self._registry_counts()
        if counts != self._counts and not self._only_these_added(homes):
            return None, 0, ()
        return homes, offset, counts

    def _only_these_added(self, homes: set[str]) -> bool:
        """Whether every row added since the last read (the newest row moved) belongs to one
        of `homes`: a row added in bulk, without a stamp naming its home, needs a full read."""
        from lianxin.care.models import CareRecipient, Household, Meter

        tables = (Meter, "household__code"), (Household, "code"), (CareRecipient, "household__code")
        for (model, code), top in zip(tables, self._counts or (None,) * 3, strict=True):
            added = model.objects.all() if top is None else model.objects.filter(pk__gt=top)
            if added.exclude(**{f"{code}__in": homes}).exists():
                return False
        return True

    def sync_registry(self) -> None:
        """Read the whole registry: register every active meter's home with the engine and
        apply per-person settings; only homes new to the engine (or moved to another area) and
        settings that changed are handed over. Away periods are not handed to the engine: the
        alerts layer silences and releases alerts by them (see Engine.apply_settings)."""
        from lianxin.care.registry import meters_frame, settings_frame

        # Before reading: a change during it is read again at the next step.
        self._stamp_at = _stamp_size(self.home)
        self._counts = self._registry_counts()
        self._synced_at = time.monotonic()
        with _collector_paused():
            meters = meters_frame().sort("meter")  # bytewise, as _sync_homes keeps it
            self._use_registry(meters, meters, settings_frame(), None)
        if len(self._registry) >= FREEZE_FROM_METERS:
            _freeze_what_lives()

    def _sync_homes(self, homes: set[str], offset: int, counts: tuple) -> None:
        """Read again the meters and residents of these homes only (an edit in the web app):
        their rows of the registry are replaced, and a meter now in one of them is dropped
        from any other (moved)."""
        from lianxin.care.registry import meters_frame, settings_frame

        if homes:
            fresh = meters_frame(homes).sort("meter")
            codes = pl.Series(sorted(homes), dtype=pl.String)
            held = pl.col("household_id").is_in(codes.implode()) | pl.col("meter").is_in(
                fresh["meter"].implode()
            )
            # A resident's edit leaves the meters as they were: the million-row registry is
            # then neither rebuilt nor searched again.
            same = self._registry.filter(held).equals(fresh)
            meters = (
                None if same else pl.concat([self._registry.filter(~held), fresh]).sort("meter")
            )
            self._use_registry(meters, fresh, settings_frame(homes), codes)
        self._stamp_at, self._counts = offset, counts

    def _use_registry(self, meters, changed, settings, codes: pl.Series | None) -> None:
        """The registry `meters` (every meter, in meter number order; None: as it was) is the
        monitor's; the homes of `changed` (all of them, or the homes `codes` read again) new
        to the engine or moved are registered, and `settings` (of those homes) that changed
        are applied."""
        if meters is not None:
            self._registry = meters
            self.meters = meters.drop("account", "resolution_kwh")
            self.accounts = meterdata.accounts_of(meters)
            # One meter per home and kind (no replaced meter still reporting): an interval's
            # readings need no summing per home when they are in one unit (see _readings).
            self._one_meter_each = meters.select("household_id", "meter_kind").is_unique().all()
        if self._registry.is_empty():
            return
        # A home's readings are judged at the coarsest resolution of its meters (a 换表 pair).
        homes = (
            changed.drop("account")
            .with_columns(
                pl.col("resolution_kwh").fill_null(0.0).max().over("household_id", "meter_kind")
            )
            .unique(["household_id", "meter_kind"], keep="first", maintain_order=True)
        )
        fresh = self._unregistered(homes.drop("meter"))
        if fresh.height:
            self.engine.register(fresh)
            self._add_to_record("register", fresh)
        known = self.engine.index
        settings = settings.filter(
            pl.Series([h in known for h in settings["household_id"].to_list()], dtype=pl.Boolean)
        )
        before = self._settings
        if before is not None and codes is not None:
            before = before.filter(pl.col("household_id").is_in(codes.implode()))
        changed_settings = (
            settings
            if before is None
            else settings.join(before, on=settings.columns, how="anti", nulls_equal=True)
        )
        if changed_settings.height:
            self.engine.apply_settings(changed_settings)
            self._add_to_record("settings", changed_settings)
        if codes is not None and self._settings is not None:
            others = self._settings.filter(~pl.col("household_id").is_in(codes.implode()))
            settings = pl.concat([others, settings])
        self._settings = settings

    def _unregistered(self, homes: pl.DataFrame) -> pl.DataFrame:
        """The rows of `homes` the engine does not have, or has in another transformer area
        or at another register resolution."""
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
        res = np.zeros(len(rows), np.float32)
        res[known] = eng.a.res_kwh[rows[known]]
        rescaled = pl.col("resolution_kwh").cast(pl.Float32) != pl.lit(res)
        return keyed.filter(pl.col("row").is_null() | moved | rescaled).drop("key", "row")

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
            homes, offset, counts = self._registry_change()
            if homes is None:
                self.sync_registry()
            else:
                self._sync_homes(homes, offset, counts)
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
        if self._one_meter_each and (
            joined.height == 0 or (joined["unit"] == joined["unit"][0]).all()
        ):
            # The store holds one value per (meter, ts, unit): with one unit and one meter per
            # home and kind, each (home, kind, ts) has one row already. Grouping a million
            # rows to sum nothing costs a quarter of a second.
            out = joined.select("household_id", "meter_kind", "ts", meterdata.QUANTITY)
        else:
            out = joined.group_by("household_id", "meter_kind", "ts").agg(
                pl.col(meterdata.QUANTITY).sum()
            )
        report.readings = out.height
        return out

    def _events(self, start, end, report: StepReport) -> pl.DataFrame | None:
        raw = self.stores.events.read(None, start, end)
        if raw.is_empty():
            return None
        names = meterdata.engine_events(raw.filter(pl.col("ts") > start), self.meters)
        report.events = names.height
        return names if names.height else None

    def _payments(self, start, end) -> pl.DataFrame | None:
        pay = self.stores.payments.read(None, start, end).filter(pl.col("ts") > start)
        bal = self.stores.balances.read(None, start, end).filter(pl.col("ts") > start)
        return meterdata.engine_payments(pay, bal, self.meters, self.accounts)


_MAGIC = b"LXJ2 "  # a journal record with a checksum (older records start with their header)
_AFTER = "comes after {}, which could not be read: the engine state cannot be rebuilt past it"


class _Damaged(Exception):
    """A journal record that cannot be read as written: the message says why."""


# From this many meters on, a full read of the registry ends by moving what is alive out of
# the cycle collector's reach (_freeze_what_lives); under it, the full collection that goes
# with it costs more than it saves.
FREEZE_FROM_METERS = 100_000


@contextlib.contextmanager
def _collector_paused():
    """Python's cycle collector paused while the registry is read: at a million homes the
    read makes millions of objects, and each full collection meanwhile walked them all
    (~0.1 s, eight times: 1 s of a 5 s read)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _freeze_what_lives() -> None:
    """What is alive now (the engine state, the registry: millions of objects at a million
    homes) kept out of the cycle collector's reach, which walked them all in every full
    collection (three in a step that raised 30 k findings). Unfrozen and collected first, so
    that what died since the last full read is freed."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _stamp_size(home: Path) -> int:
    try:
        return (Path(home) / REGISTRY_STAMP).stat().st_size
    except FileNotFoundError:
        return 0


def _record_number(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        return -1


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _read_record(path: Path) -> tuple[dict, dict[str, pl.DataFrame]]:
    """A journal record's header and frames, checked: raises _Damaged saying what is wrong."""
    data = memoryview(path.read_bytes())
    crc = None
    if bytes(data[: len(_MAGIC)]) == _MAGIC:
        end = bytes(data[:32]).find(b"\n")
        try:
            crc = int(bytes(data[len(_MAGIC) : end]), 16) if end > 0 else None
        except ValueError:
            crc = None
        if crc is None:
            raise _Damaged(f"cut short or damaged in its first line ({len(data)} bytes)")
        data = data[end + 1 :]
    end = bytes(data[:65536]).find(b"\n")
    try:
        header = json.loads(bytes(data[:end])) if end > 0 else None
        sizes = list(header["frames"].values())
        want = end + 1 + sum(sizes)
    except (ValueError, TypeError, KeyError, AttributeError):
        header, want = None, None
    if want is not None and len(data) < want:
        raise _Damaged(f"cut short: {len(data)} of its {want} bytes are on disk")
    if crc is not None and zlib.crc32(data) != crc:
        raise _Damaged("checksum mismatch: its bytes changed on disk")
    if header is None or len(data) != want:
        raise _Damaged("its header cannot be read or does not match its length")
    frames, at = {}, end + 1
    try:
        for name, size in header["frames"].items():
            frames[name] = pl.read_ipc(io.BytesIO(data[at : at + size]))
            at += size
        for key in ("now", "tz", "apply"):
            header[key]  # noqa: B018 - present, or the record is not one the monitor wrote
    except Exception as exc:  # noqa: BLE001 - an older record without a checksum, damaged
        raise _Damaged(f"cannot be decoded: {_why(exc)}") from exc
    return header, frames


_EMPTY_READINGS = pl.DataFrame(
    schema={
        "household_id": pl.String,
        "ts": pl.Datetime("us", "UTC"),
        meterdata.QUANTITY: pl.Float64,
        "meter_kind": pl.String,
    }
)


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
