"""Parsed batches into the stores: the step the HTTP API and the MQTT subscriber share.

Order matters for durability: readings and events are written to the stores (fsynced) before
anything is acknowledged, and rejected rows are kept in the quarantine in the same call, so the
caller may acknowledge as soon as `take()` returns.
"""

import logging
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from lianxin.atomic import atomic_write
from lianxin.care.models import Meter
from lianxin.ingest.api.rows import (
    KEEP_ERRORS,
    Parsed,
    RowError,
    errors_json,
    rejected_rows,
)
from lianxin.ingest.models import KEEP_IN_DB, ImportRun, Rejection, db_text
from lianxin.store import WriteResult, open_stores

log = logging.getLogger(__name__)


class MeterDirectory:
    """Meter number -> kind, looked up in bulk and cached for the life of the process.

    Only known meters are cached: a meter registered a second ago is found on the next batch. A
    meter's kind does not change once it sends data, so entries never go stale in practice.
    """

    def __init__(self):
        self._kinds: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, numbers: Iterable[str]) -> dict[str, str]:
        numbers = list(numbers)
        kinds = self._kinds
        missing = [n for n in numbers if n not in kinds]
        if missing:
            found = {}
            # Chunked: SQLite caps the number of query parameters.
            for i in range(0, len(missing), 900):
                found.update(
                    Meter.objects.filter(number__in=missing[i : i + 900]).values_list(
                        "number", "kind"
                    )
                )
            if found:  # unknown meters are not cached: copy only when something was found
                with self._lock:
                    self._kinds = {**self._kinds, **found}
                kinds = self._kinds
        return {n: kinds[n] for n in numbers if n in kinds}

    def accounts_of(self, numbers: Iterable[str]) -> dict[str, str]:
        """Meter number -> its account (户号), for payments sent by meter."""
        numbers = list(numbers)
        out = {}
        for i in range(0, len(numbers), 900):
            out.update(
                Meter.objects.filter(number__in=numbers[i : i + 900]).values_list(
                    "number", "account_number"
                )
            )
        return out

    def known_accounts(self, accounts: Iterable[str]) -> set[str]:
        accounts = list(accounts)
        out = set()
        for i in range(0, len(accounts), 900):
            out.update(
                Meter.objects.filter(account_number__in=accounts[i : i + 900]).values_list(
                    "account_number", flat=True
                )
            )
        return out


@dataclass
class Outcome:
    """What happened to one batch, as answered to the sender."""

    received: int
    readings: WriteResult
    events: WriteResult
    errors: list[RowError] = field(default_factory=list)
    payments: WriteResult = field(default_factory=WriteResult)
    balances: WriteResult = field(default_factory=WriteResult)

    def total(self) -> WriteResult:
        return self.readings + self.events + self.payments + self.balances

    @property
    def rejected(self) -> int:
        return rejected_rows(self.errors)

    def to_dict(self) -> dict:
        total = self.total()
        out = {
            "received": self.received,
            "accepted": total.accepted,
            "replaced": total.replaced,
            "duplicate": total.duplicate,
            "rejected": self.rejected,
            "readings": {
                "accepted": self.readings.accepted,
                "replaced": self.readings.replaced,
                "duplicate": self.readings.duplicate,
            },
            "events": {
                "accepted": self.events.accepted,
                "replaced": self.events.replaced,
                "duplicate": self.events.duplicate,
            },
            "errors": errors_json(self.errors, KEEP_ERRORS),
            "errors_truncated": len(self.errors) > KEEP_ERRORS,
        }
        # Payments and balances are answered when a batch holds them (older senders' answers
        # keep their shape).
        for name in ("payments", "balances"):
            w = getattr(self, name)
            if w.total:
                out[name] = {
                    "accepted": w.accepted,
                    "replaced": w.replaced,
                    "duplicate": w.duplicate,
                }
        return out


# Sent (robustly: a receiver's failure never fails the batch) once a batch is durable, with
# source= and outcome=; the data-health page counts deliveries per source and day from it.
batch_taken = Signal()


class PartlyStored(Exception):
    """A batch failed after some of it was stored: says exactly which part (a re-send of the
    whole batch is safe: the stored part counts as duplicate)."""

    def __init__(self, stored: list[str], results: dict[str, WriteResult]):
        super().__init__(f"stored {' and '.join(stored)} only")
        self.stored, self.results = stored, results

    def to_dict(self) -> dict:
        return {
            name: {"accepted": w.accepted, "replaced": w.replaced, "duplicate": w.duplicate}
            for name, w in self.results.items()
            if name in self.stored
        }


class Intake:
    def __init__(self, home: Path | None = None):
        self.home = Path(home or settings.LIANXIN_HOME)
        self.stores = open_stores(self.home)
        self.meter_kinds = MeterDirectory()
        self.time_zone = settings.TIME_ZONE

    def take(self, parsed: Parsed, *, source: str, description: str) -> Outcome:
        """Write the valid rows durably and quarantine the others (source and description name
        where the batch came from, for the person who reads the quarantine)."""
        results = {name: WriteResult() for name in ("readings", "events", "payments", "balances")}
        stored: list[str] = []
        frames = {
            "readings": parsed.readings,
            "events": parsed.events,
            "payments": None
            if parsed.payments is None
            else parsed.payments.select("account", "ts", "amount", "channel"),
            "balances": None if parsed.balances is None else parsed.balances.drop("row"),
        }
        try:
            # Each store writes all of its days or none (see Dataset.write).
            for name, frame in frames.items():
                if frame is not None and frame.height:
                    store = getattr(self.stores, name)
                    results[name] = store.write(frame.drop("row", strict=False))
                    stored.append(name)
            outcome = Outcome(
                parsed.received,
                results["readings"],
                results["events"],
                parsed.errors,
                payments=results["payments"],
                balances=results["balances"],
            )
            if parsed.errors:
                self.quarantine(
                    parsed.errors, source=source, description=description, outcome=outcome
                )
        except Exception as exc:
            if stored:
                raise PartlyStored(stored, results) from exc
            raise
        for _receiver, result in batch_taken.send_robust(Intake, source=source, outcome=outcome):
            if isinstance(result, Exception):
                log.warning("a batch_taken receiver failed: %s", result)
        return outcome

    def quarantine(
        self, errors: list[RowError], *, source: str, description: str, outcome=None
    ) -> ImportRun:
        """Keep every rejected row in the ingest quarantine: one run per batch, its rows in the
        database (up to KEEP_IN_DB) and all of them in a Parquet file beside the stores."""
        by_code = Counter(e.code for e in errors)
        rejected = rejected_rows(errors)
        both = outcome.total() if outcome else WriteResult()
        with transaction.atomic():
            run = ImportRun.objects.create(
                source=db_text(source, 500),
                description=db_text(description, 300),
                status=ImportRun.Status.PARTIAL if both.total else ImportRun.Status.FAILED,
                finished_at=timezone.now(),
                rows=outcome.received if outcome else rejected,
                accepted=both.accepted,
                replaced=both.replaced,
                duplicate=both.duplicate,
                rejected=rejected,
                rejected_by_reason=dict(by_code),
            )
            if len(errors) > KEEP_IN_DB:
                run.quarantine_file = str(self._quarantine_file(run, errors))
                run.save(update_fields=["quarantine_file"])
            Rejection.objects.bulk_create(
                [
                    Rejection.of(
                        run,
                        e.line if e.line is not None else e.row,
                        e.field,
                        e.value,
                        e.code,
                        e.reason,
                    )
                    for e in errors[:KEEP_IN_DB]
                ],
                batch_size=1000,
            )
        return run

    def _quarantine_file(self, run: ImportRun, errors: list[RowError]) -> Path:
        folder = self.home / "quarantine"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"push-{run.pk}.parquet"
        frame = pl.DataFrame(
            {
                "line": [e.line if e.line is not None else e.row for e in errors],
                "field": [e.field for e in errors],
                "value": ["" if e.value is None else str(e.value) for e in errors],
                "code": [e.code for e in errors],
                "reason": [e.reason for e in errors],
            }
        )
        with atomic_write(path) as fh:
            frame.write_parquet(fh)
        return path
