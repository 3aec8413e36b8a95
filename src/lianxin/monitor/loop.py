from __future__ import annotations

import fcntl
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from lianxin import meterdata
from lianxin.atomic import atomic_write
from lianxin.engine.config import EngineConfig
from lianxin.engine.core import Engine
from lianxin.engine.findings import Finding
from lianxin.errors import LianxinError
from lianxin.store import open_stores

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


class Monitor:
    """One monitor per data directory (a lock file makes sure of that).

    `lateness`: how long after an interval ends its reading may still arrive and be judged.
    The engine's clock trails the wall clock by it; a reading that arrives later still lands
    in the store, but the engine has moved past its interval and does not learn from it.
    """

    def __init__(
        self, home: Path, tz: str, history_days: int = 28, lateness: timedelta = timedelta(0)
    ):
        if lateness < timedelta(0):
            raise LianxinError(f"lateness must not be negative, got {lateness}")
        self.home = Path(home)
        self.lateness = lateness
        self.stores = open_stores(self.home)
        self.dir = self.home / "monitor"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "engine.state"
        self.history = timedelta(days=history_days)
        self._lock = open(self.dir / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LianxinError(f"another monitor is already running on {self.home}") from exc
        if self.state_path.exists():
            self.engine = Engine.restore(self.state_path.read_bytes())
            if self.engine.cfg.tz != tz:
                # The deployment's zone wins over the one the state was saved with: routines
                # learned in the old local hours are relearned within history_days.
                log.warning(
                    "engine state was saved with time zone %s; following LIANXIN_TIME_ZONE=%s",
                    self.engine.cfg.tz,
                    tz,
                )
                self.engine.set_time_zone(tz)
        else:
            self.engine = Engine(EngineConfig(tz=tz))
        self.meters = pl.DataFrame()
        self.accounts = pl.DataFrame()

    def close(self):
        self._lock.close()

    # ---- the care database -> the engine's registry ----------------------------------------

    def sync_registry(self) -> None:
        """Register every active meter's home with the engine and apply per-person settings.
        Away periods are not handed to the engine: the alerts layer silences and releases
        alerts by them (see Engine.apply_settings)."""
        from lianxin.care.models import CareRecipient, Meter, with_replaced

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
            }
        )
        self.accounts = pl.DataFrame(
            {"account": list(account), "household_id": list(household)}
        ).unique("account", keep="first")
        self.engine.register(
            self.meters.unique(["household_id", "meter_kind"], keep="first", maintain_order=True)
        )
        settings = []
        for person in CareRecipient.objects.select_related("household"):
            settings.append(
                {
                    "household_id": person.household.code,
                    "sensitivity": person.sensitivity,
                    "quiet_start": _hhmm(person.quiet_hours_start),
                    "quiet_end": _hhmm(person.quiet_hours_end),
                }
            )
        settings = [s for s in settings if s["household_id"] in self.engine.index]
        if settings:
            self.engine.apply_settings(pl.DataFrame(settings))

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
        if self.meters.is_empty():
            self.sync_registry()
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
        fed_back = self._feedback()
        readings = self._readings(clock - longest, now, clock, report)
        events = self._events(clock, now, report)
        payments = self._payments(clock, now)
        findings = self.engine.step(
            readings, now, events=events, payments=payments, progress=progress
        )
        report.findings = findings
        if raise_alerts and findings:
            from lianxin.alerts.service import apply_findings

            report.alerts = len(
                apply_findings(findings, now=alerts_at, skipped=report.skipped)
            )
        self._save()
        if fed_back:
            # Marked only once the state that learned from them is on disk; a crash in
            # between hands them over again, and the engine counts one alarm only once.
            from lianxin.alerts.models import Alert

            Alert.objects.filter(pk__in=fed_back).update(fed_back_at=report.now)
        report.outcomes = len(fed_back)
        return report

    def _feedback(self) -> list[int]:
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
            return []
        pk, household, kind, started, outcome = zip(*rows, strict=True)
        self.engine.feedback(
            pl.DataFrame(
                {
                    "household_id": list(household),
                    "kind": list(kind),
                    "started_at": [int(t.timestamp()) for t in started],
                    "outcome": list(outcome),
                }
            )
        )
        return list(pk)

    def _readings(self, start, end, clock, report: StepReport) -> pl.DataFrame:
        raw = self.stores.readings.read(None, start, end)
        if raw.is_empty():
            return pl.DataFrame(
                schema={
                    "household_id": pl.String,
                    "ts": pl.Datetime("us", "UTC"),
                    meterdata.QUANTITY: pl.Float64,
                    "meter_kind": pl.String,
                }
            )
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

    def _save(self) -> None:
        # Write-then-rename: a crash leaves the previous state, and findings already applied
        # are skipped on the next run because apply_findings is idempotent on finding_id.
        with atomic_write(self.state_path) as f:
            f.write(self.engine.snapshot())


def _hhmm(value) -> str | None:
    return value.strftime("%H:%M") if value else None
