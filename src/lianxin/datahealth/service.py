"""The figures of the data-health page, per source and per day (local days of the deployment's
time zone), from the import runs, the per-source counters and the store itself."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from lianxin.datahealth.models import SourceDay
from lianxin.ingest.models import ImportRun

# A reading is late when it arrives this long after its interval ended: the live monitor (by
# default `--lateness 5`) has judged that interval already.
LATE_AFTER = timedelta(minutes=5)
STREAMS = ("http push from ", "mqtt")


def count_batch(sender, *, source: str, outcome, **kwargs) -> None:
    """batch_taken receiver: add one durable batch to its source's row of today."""
    day = timezone.localdate()
    both = outcome.readings + outcome.events
    with transaction.atomic():
        SourceDay.objects.get_or_create(source=source[:200], day=day)
        SourceDay.objects.filter(source=source[:200], day=day).update(
            batches=F("batches") + 1,
            received=F("received") + outcome.received,
            accepted=F("accepted") + both.accepted,
            replaced=F("replaced") + both.replaced,
            duplicate=F("duplicate") + both.duplicate,
            rejected=F("rejected") + outcome.rejected,
        )


def source_of(run_source: str) -> str:
    """The source an import run belongs to: a stream by its name, files by their folder."""
    if run_source.startswith("mqtt"):
        return "mqtt"
    if run_source.startswith(STREAMS):
        return run_source
    return f"files in {Path(run_source).parent}"


@dataclass
class Row:
    day: date
    source: str
    deliveries: int = 0  # batches, messages or files
    accepted: int = 0
    replaced: int = 0
    duplicate: int = 0
    rejected: int = 0
    by_reason: Counter = field(default_factory=Counter)
    quarantined: int = 0  # whole files or messages nothing could be read from
    runs: list[int] = field(default_factory=list)  # import runs holding its rejections

    @property
    def reasons(self) -> list[tuple[str, int]]:
        return self.by_reason.most_common()


def by_source(days: int) -> list[Row]:
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    tz = ZoneInfo(settings.TIME_ZONE)
    since = datetime.combine(first, time(), tz)
    rows: dict[tuple[date, str], Row] = {}

    def row(day, source) -> Row:
        return rows.setdefault((day, source), Row(day, source))

    for s in SourceDay.objects.filter(day__gte=first):
        r = row(s.day, s.source)
        r.deliveries += s.batches
        r.accepted += s.accepted
        r.replaced += s.replaced
        r.duplicate += s.duplicate
    for run in ImportRun.objects.filter(started_at__gte=since).order_by("started_at"):
        source = source_of(run.source)
        r = row(timezone.localdate(run.started_at), source)
        if not run.source.startswith(STREAMS):
            # A file is one delivery; a stream's batches were counted as they came.
            r.deliveries += 1
            r.accepted += run.accepted
            r.replaced += run.replaced
            r.duplicate += run.duplicate
        r.rejected += run.rejected
        r.by_reason.update(run.rejected_by_reason or {})
        if run.status == ImportRun.Status.FAILED:
            r.quarantined += 1
        if run.rejected or run.status == ImportRun.Status.FAILED:
            r.runs.append(run.pk)
    return sorted(rows.values(), key=lambda r: (-r.day.toordinal(), r.source))


@dataclass
class StoreDay:
    day: date  # UTC day, as the store is partitioned
    readings: int = 0
    late: int = 0
    meters_reporting: int = 0
    meters_silent: int = 0
    damaged: list[dict] = field(default_factory=list)


def by_store_day(days: int, home: Path | None = None) -> list[StoreDay]:
    """Per UTC day of the readings store: readings held, late arrivals, meters that sent nothing,
    files set aside as damaged."""
    from lianxin.care.models import Meter
    from lianxin.store import Dataset, damaged_files, open_stores

    home = Path(home or settings.LIANXIN_HOME)
    store = open_stores(home).readings
    today = datetime.now(UTC).date()
    wanted = [today - timedelta(days=i) for i in range(days)]
    intervals = dict(Meter.objects.filter(active=True).values_list("number", "interval_minutes"))
    damaged = defaultdict(list)
    # With the monitor's journal records and checkpoints set aside (monitor/damaged/, same log).
    monitor = [{"dataset": "monitor", **r} for r in Dataset.damaged_at(home / "monitor")]
    for record in [*damaged_files(home), *monitor]:
        damaged[record.get("day", "")].append(record)
    out = []
    for day in wanted:
        figures = StoreDay(day, damaged=damaged.get(day.isoformat(), []))
        start = datetime.combine(day, time(), UTC)
        frame = store.read(None, start, start + timedelta(days=1))
        if frame.height:
            interval = pl.col("meter").replace_strict(intervals, default=15, return_dtype=pl.Int64)
            figures.readings = frame.height
            figures.late = frame.filter(
                pl.col("received_at")
                > pl.col("ts") + pl.duration(minutes=interval) + pl.lit(LATE_AFTER)
            ).height
            reporting = set(frame["meter"].unique().to_list())
            figures.meters_reporting = len(reporting & set(intervals))
        figures.meters_silent = len(set(intervals)) - figures.meters_reporting
        out.append(figures)
    return out


def silent_meters(limit: int = 50) -> tuple[int, list[str]]:
    """Active meters with no reading in the last 24 hours: how many, and the first of them."""
    from lianxin.care.models import Meter
    from lianxin.store import open_stores

    now = datetime.now(UTC)
    store = open_stores(settings.LIANXIN_HOME).readings
    heard = set(store.read(None, now - timedelta(hours=24), now)["meter"].unique().to_list())
    active = Meter.objects.filter(active=True).order_by("number").values_list("number", flat=True)
    silent = [m for m in active if m not in heard]
    return len(silent), silent[:limit]
