"""Import one file: read it (readers), look its meters up in the care models, quarantine unknown
meters or register them (--register-unknown), write the stores, keep every rejection, and return a
summary a data engineer can act on. Needs Django set up; the readers and the store do not."""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from lianxin.care.models import (
    Feeder,
    Household,
    Meter,
    MeterReplacement,
    TransformerArea,
    valid_household_code,
)
from lianxin.ingest.models import KEEP_IN_DB, ImportRun, Rejection
from lianxin.ingest.readers import REJECTION_SCHEMA, Batch, FileError, Options, open_source
from lianxin.store import WriteResult, open_stores

EXAMPLES = 12


@dataclass
class Summary:
    source: str
    description: str = ""
    error: str = ""
    rows: int = 0
    written: dict[str, WriteResult] = field(default_factory=dict)  # per dataset
    rejected: Counter = field(default_factory=Counter)  # code -> count
    reasons: dict[str, str] = field(default_factory=dict)  # code -> an example reason
    examples: list[str] = field(default_factory=list)
    registered: Counter = field(default_factory=Counter)
    topology_updated: int = 0
    replacements: int = 0  # 换表 records kept
    quarantine_file: str = ""
    held_files: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # columns used and ignored
    notes: list[str] = field(default_factory=list)  # e.g. registers read as a rollover

    @property
    def good(self) -> int:
        """Records that were read successfully (stored, duplicate, or quarantined for a meter)."""
        return (
            sum(w.total for w in self.written.values())
            + self.topology_updated
            + self.replacements
            + self.rejected.get("unknown_meter", 0)
        )

    def total(self) -> WriteResult:
        out = WriteResult()
        for w in self.written.values():
            out = out + w
        return out

    def lines(self) -> list[str]:
        if self.error:
            return [f"{self.source}: FAILED: {self.error}"]
        t = self.total()
        out = [f"{self.source}: {self.description}"]
        out.extend(f"  columns {c}" for c in self.columns)
        out.append(f"  rows read     {self.rows:>12,}")
        for name, w in self.written.items():
            out.append(
                f"  {name:<13} accepted {w.accepted:,}, replaced {w.replaced:,}, "
                f"duplicate {w.duplicate:,}"
            )
        if len(self.written) > 1:
            out.append(
                f"  total         accepted {t.accepted:,}, replaced {t.replaced:,}, "
                f"duplicate {t.duplicate:,}"
            )
        if self.topology_updated:
            out.append(f"  topology      {self.topology_updated:,} meters placed in their 台区")
        if self.replacements:
            out.append(f"  replacements  {self.replacements:,} 换表 records kept")
        if self.registered:
            made = ", ".join(f"{n:,} {what}" for what, n in self.registered.items())
            out.append(f"  registered    {made}")
        out.extend(f"  note          {n}" for n in self.notes)
        n_rej = sum(self.rejected.values())
        out.append(f"  rejected      {n_rej:>12,}")
        for code, n in self.rejected.most_common():
            example = self.reasons[code] if n == 1 else f"e.g. {self.reasons[code]}"
            out.append(f"    {n:>10,}  {code}: {example}")
        if self.examples:
            out.append("  first rejections:")
            out.extend(f"    {e}" for e in self.examples)
        if self.quarantine_file:
            out.append(f"  quarantine    {self.quarantine_file}")
        for held in self.held_files:
            out.append(
                f"  held          {held} (records of unknown meters: `lianxin import` this file "
                "once the meters are registered)"
            )
        return out


class Directory:
    """The care models' meters, looked up in bulk with a per-import cache, and registration of
    unknown meters from an export's own columns."""

    def __init__(self, register_unknown: bool, summary: Summary):
        self.register_unknown = register_unknown
        self.summary = summary
        self.known: dict[str, str] = {}  # meter number -> account number
        self.resolution: dict[str, float | None] = {}  # meter number -> its resolution_kwh
        self.resolution_set: Counter[float] = Counter()  # resolution -> meters it was set for
        self.absent: set[str] = set()
        self.by_household: dict[tuple[str, str], str] = {}  # (household code, kind) -> meter

    def lookup(self, numbers: list[str]) -> None:
        todo = [n for n in numbers if n not in self.known and n not in self.absent]
        if not todo:
            return
        # Plain SQL on the unique index, unordered: the model's default ordering and a Django
        # row per meter cost 14 µs a meter, most of a 100,000-meter import's look-up.
        qn = connection.ops.quote_name
        number = qn(Meter._meta.get_field("number").column)
        account = qn(Meter._meta.get_field("account_number").column)
        res = qn(Meter._meta.get_field("resolution_kwh").column)
        table = qn(Meter._meta.db_table)
        with connection.cursor() as cur:
            for i in range(0, len(todo), 5000):
                part = todo[i : i + 5000]
                marks = ", ".join(["%s"] * len(part))
                cur.execute(
                    f"SELECT {number}, {account}, {res} FROM {table} WHERE {number} IN ({marks})",
                    part,
                )
                rows = cur.fetchall()
                found = {n: a for n, a, _ in rows}
                self.known.update(found)
                self.resolution.update((n, r) for n, _, r in rows)
                self.absent.update(n for n in part if n not in found)

    def set_resolution(self, numbers: list[str], resolution: float) -> None:
        """Record the register resolution of these (known) meters where it changed, so the
        engine reads their zero differences as "under one step" (see Meter.resolution_kwh)."""
        changed = [
            n for n in numbers if n in self.known and self.resolution.get(n) != resolution
        ]  # fmt: skip
        if not changed:
            return
        qn = connection.ops.quote_name
        number = qn(Meter._meta.get_field("number").column)
        res = qn(Meter._meta.get_field("resolution_kwh").column)
        table = qn(Meter._meta.db_table)
        with transaction.atomic(), connection.cursor() as cur:
            for i in range(0, len(changed), 5000):
                part = changed[i : i + 5000]
                marks = ", ".join(["%s"] * len(part))
                cur.execute(
                    f"UPDATE {table} SET {res} = %s WHERE {number} IN ({marks})",
                    [resolution, *part],
                )
            _registry_changed()
        self.resolution.update((n, resolution) for n in changed)
        self.resolution_set[resolution] += len(changed)

    def meters_of_households(self, codes: list[str], kinds: dict[str, str]) -> dict[str, str]:
        todo = [c for c in codes if (c, kinds[c]) not in self.by_household]
        for i in range(0, len(todo), 5000):
            part = todo[i : i + 5000]
            for code, kind, number in Meter.objects.filter(household__code__in=part).values_list(
                "household__code", "kind", "number"
            ):
                self.by_household.setdefault((code, kind), number)
        return {
            c: self.by_household[(c, kinds[c])] for c in codes if (c, kinds[c]) in self.by_household
        }

    @transaction.atomic
    def register(self, info: pl.DataFrame, by_household: bool = False) -> None:
        """Create meters (and their households and transformer areas) for the rows of `info`:
        one row per meter with the export's account, name, address, area columns. In bulk: an
        export may bring a hundred thousand new meters."""
        rows = [r for r in info.iter_rows(named=True) if len(r["meter"]) <= 32]
        rows = self._valid_codes(rows, by_household)
        areas = self._areas(rows)
        households: dict[str, Household] = {}
        for row in rows:
            account = (_text(row.get("account")) or row["meter"])[:32]
            code = row["meter"] if by_household else account
            households.setdefault(
                code,
                Household(
                    code=code[:64],
                    address=(_text(row.get("address")) or _text(row.get("name")) or code)[:200],
                    transformer_area=areas.get(_text(row.get("area_code"))[:32]),
                ),
            )
        ids = _ids(Household, list(households))
        new = [h for c, h in households.items() if c not in ids]
        Household.objects.bulk_create(new, batch_size=1000)
        self.summary.registered["households"] += len(new)
        ids.update(_ids(Household, [h.code for h in new]))
        meters = []
        for row in rows:
            account = (_text(row.get("account")) or row["meter"])[:32]
            code = row["meter"] if by_household else account
            kind = _meter_kind(row)
            meters.append(
                Meter(
                    number=row["meter"], account_number=account, household_id=ids[code], kind=kind
                )
            )
            self.known[row["meter"]] = account
            self.resolution[row["meter"]] = None
            self.absent.discard(row["meter"])
            self.by_household[(code, kind)] = row["meter"]
        Meter.objects.bulk_create(meters, batch_size=1000)
        self.summary.registered["meters"] += len(meters)
        _registry_changed()

    def _valid_codes(self, rows: list[dict], by_household: bool) -> list[dict]:
        """Rows whose household code keeps the code rule (care.models.HOUSEHOLD_CODE_RE); the
        others are not registered (their records stay in the quarantine as unknown meters) and
        the summary says why."""
        keep = []
        for row in rows:
            code = row["meter"] if by_household else (_text(row.get("account")) or row["meter"])
            if valid_household_code(code[:32] if not by_household else code):
                keep.append(row)
            elif len(self.summary.examples) < EXAMPLES:
                self.summary.examples.append(
                    f"meter {row['meter']!r} not registered: household code {code[:40]!r} breaks "
                    "the code rule (letters, digits, '_', '-', single '.' between them)"
                )
        return keep

    def _areas(self, rows: list[dict]) -> dict[str, TransformerArea]:
        """Transformer areas (and feeders) named by the rows, created where missing."""
        wanted: dict[str, dict] = {}
        for row in rows:
            code = _text(row.get("area_code"))[:32]
            if code:
                wanted.setdefault(code, row)
        if not wanted:
            return {}
        feeders = {}
        for name in {_text(r.get("feeder")) for r in wanted.values()} - {""}:
            feeders[name], made = Feeder.objects.get_or_create(
                code=name[:32], defaults={"name": name[:100]}
            )
            self.summary.registered["feeders"] += made
        areas = {a.code: a for a in TransformerArea.objects.filter(code__in=list(wanted))}
        for code, row in wanted.items():
            feeder = feeders.get(_text(row.get("feeder")))
            area = areas.get(code)
            if area is None:
                areas[code] = TransformerArea.objects.create(
                    code=code, name=(_text(row.get("area_name")) or code)[:100], feeder=feeder
                )
                self.summary.registered["transformer areas"] += 1
            elif feeder and area.feeder_id != feeder.id:
                area.feeder = feeder
                area.save(update_fields=["feeder"])
        return areas

    @transaction.atomic
    def replace(self, records: pl.DataFrame, headers: dict[str, str]) -> tuple[int, pl.DataFrame]:
        """Keep 换表 records: the new meter joins the old one's household (created like it if
        new), the old one is no longer active. Re-importing a record updates it."""
        rejected = []
        kept = 0
        for r in records.iter_rows(named=True):
            old = Meter.objects.filter(number=r["old_meter"]).first()
            field = headers.get("old_meter", "old_meter")
            if old is None:
                rejected.append(
                    (
                        r["_line"],
                        field,
                        r["old_meter"],
                        "unknown old meter: import its readings or register it first",
                        "unknown_meter",
                    )
                )
                continue
            new = Meter.objects.filter(number=r["new_meter"]).first()
            if new is None:
                new = Meter.objects.create(
                    number=r["new_meter"][:32],
                    account_number=old.account_number,
                    household=old.household,
                    kind=old.kind,
                    interval_minutes=old.interval_minutes,
                    prepaid=old.prepaid,
                    installed_on=r["ts"].date(),
                )
                self.summary.registered["meters"] += 1
                self.known[new.number] = new.account_number
                self.absent.discard(new.number)
            elif new.household_id != old.household_id:
                rejected.append(
                    (
                        r["_line"],
                        headers.get("new_meter", "new_meter"),
                        r["new_meter"],
                        f"the new meter belongs to household {new.household.code}, the old one "
                        f"to {old.household.code}: a replacement stays in one household",
                        "replacement_mismatch",
                    )
                )
                continue
            MeterReplacement.objects.update_or_create(
                old_meter=old,
                new_meter=new,
                defaults={
                    "household": old.household,
                    "replaced_at": r["ts"],
                    "old_final": r["old_final"],
                    "new_initial": r["new_initial"],
                },
            )
            if old.pk != new.pk and old.active:
                old.active = False
                old.save(update_fields=["active"])
            kept += 1
        return kept, pl.DataFrame(rejected, schema=REJECTION_SCHEMA, orient="row")

    @transaction.atomic
    def place(self, info: pl.DataFrame) -> int:
        """Topology: put each known meter's household in its transformer area."""
        rows = list(info.iter_rows(named=True))
        areas = self._areas(rows)
        households = {}
        numbers = [r["meter"] for r in rows]
        for i in range(0, len(numbers), 5000):
            households.update(
                (m.number, m.household)
                for m in Meter.objects.select_related("household").filter(
                    number__in=numbers[i : i + 5000]
                )
            )
        changed = {}
        for row in rows:
            household = households[row["meter"]]
            area = areas.get(_text(row.get("area_code"))[:32])
            if household.transformer_area_id != (area.id if area else None):
                household.transformer_area = area
                changed[household.pk] = household
        Household.objects.bulk_update(list(changed.values()), ["transformer_area"], batch_size=1000)
        if changed:
            _registry_changed()
        return len(rows)


def _registry_changed() -> None:
    """Bulk writes send no signals: stamp the registry as the model signals do, so a running
    monitor hands new homes and moved areas to the engine at its next step, not at its
    periodic full re-read."""
    from lianxin.store.wake import stamp_registry

    home = settings.LIANXIN_HOME
    transaction.on_commit(lambda: stamp_registry(home))


def _ids(model, codes: list[str]) -> dict[str, int]:
    out = {}
    for i in range(0, len(codes), 5000):
        out.update(model.objects.filter(code__in=codes[i : i + 5000]).values_list("code", "id"))
    return out


def _text(v) -> str:
    return "" if v is None else str(v).strip()


def _meter_kind(row: dict) -> str:
    kind = _text(row.get("kind")).lower()
    aliases = {"水": "water", "water": "water", "气": "gas", "燃气": "gas", "gas": "gas"}
    if kind in aliases:
        return aliases[kind]
    return "water" if row.get("unit") == "m3" else "electricity"


HELD_COLUMNS = {
    "readings": ["_line", "meter", "household", "ts", "value", "unit"],
    "registers": ["_line", "meter", "ts", "value", "unit"],
    "interval_registers": ["_line", "meter", "ts", "value", "unit"],
    "events": ["_line", "meter", "ts", "event", "detail"],
    "payments": ["_line", "account", "meter", "ts", "amount", "channel"],
    "balances": ["_line", "meter", "ts", "balance"],
}


class Quarantine:
    """Every rejection of a run: all of them in a Parquet file, the first KEEP_IN_DB in the DB."""

    def __init__(self, run: ImportRun, home: Path):
        self.run = run
        self.path = home / "quarantine" / f"run-{run.pk:06d}.parquet"
        self.writer: pq.ParquetWriter | None = None
        self.held: dict[str, pq.ParquetWriter] = {}
        self.held_paths: list[Path] = []
        self.in_db = 0

    def add(self, rejections: pl.DataFrame) -> None:
        if not rejections.height:
            return
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, pa.schema(_arrow_schema()))
        table = rejections.select(list(REJECTION_SCHEMA)).to_arrow()
        self.writer.write_table(table.cast(self.writer.schema))
        room = KEEP_IN_DB - self.in_db
        if room > 0:
            rows = rejections.head(room).iter_rows(named=True)
            Rejection.objects.bulk_create(
                [
                    Rejection.of(
                        self.run, r["line"], r["field"], r["value"], r["code"], r["reason"]
                    )
                    for r in rows
                ],
                batch_size=1000,
            )
            self.in_db += min(room, rejections.height)

    def hold(self, kind: str, records: pl.DataFrame) -> None:
        """Keep the records of unknown meters themselves (store columns + source line), so they
        are not lost even if the source file goes: run-N-<kind>.parquet beside the rejections."""
        columns = HELD_COLUMNS.get(kind)
        if not records.height or not columns:
            return
        table = records.select([c for c in columns if c in records.columns]).to_arrow()
        writer = self.held.get(kind)
        if writer is None:
            path = self.path.with_name(f"{self.path.stem}-{kind}.parquet")
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = self.held[kind] = pq.ParquetWriter(path, table.schema)
            self.held_paths.append(path)
        writer.write_table(table.cast(writer.schema))

    def close(self) -> str:
        for writer in self.held.values():
            writer.close()
        if self.writer is None:
            return ""
        self.writer.close()
        return str(self.path)


def _arrow_schema():
    return [
        ("line", pa.int64()),
        ("field", pa.string()),
        ("value", pa.string()),
        ("reason", pa.string()),
        ("code", pa.string()),
    ]


def import_file(
    path: Path | str,
    options: Options | None = None,
    register_unknown: bool = False,
    home: Path | None = None,
    progress=None,
) -> Summary:
    """Import one file; never raises for bad data (the summary says what went wrong).
    `progress(rows)` is called after each batch with the rows it read."""
    path = Path(path)
    options = options or Options(time_zone=settings.TIME_ZONE)
    home = Path(home or settings.LIANXIN_HOME)
    stores = open_stores(home)
    summary = Summary(source=str(path))
    run = ImportRun.objects.create(source=str(path)[:500])
    quarantine = Quarantine(run, home)
    directory = Directory(register_unknown, summary)
    writer = _Writer()
    try:
        if options.previous is None:
            options.previous = _previous_registers(stores)
        options.replacements = _replacements()
        source = open_source(path, options)
        summary.description = source.describe()
        summary.columns = source.columns_note()
        for batch in source.batches():
            summary.rows += batch.rows
            if progress is not None:
                progress(batch.rows)
            rejections = [batch.rejections]
            rejections.append(_resolve(batch, directory, source._columns))
            if batch.held is not None:
                quarantine.hold(batch.kind, batch.held)
            if batch.kind == "topology":
                summary.topology_updated += directory.place(batch.records)
            elif batch.kind == "replacements":
                kept, rej = directory.replace(batch.records, source._columns)
                summary.replacements += kept
                rejections.append(rej)
            elif batch.records.height:
                _store(batch, stores, summary, options, rejections, writer)
            rej = pl.concat([r for r in rejections if r.height] or [rejections[0]]).sort("line")
            _count(rej, summary, path)
            quarantine.add(rej)
        writer.wait()
        # A 日期 column may have shown times of day: say what the file turned out to be.
        summary.description = source.describe()
        summary.columns = source.columns_note()
        _register_notes(source, summary)
        for resolution, meters in sorted(directory.resolution_set.items()):
            summary.notes.append(
                f"register resolution {resolution:g} kWh recorded for {meters:,} meters (from "
                "the decimals the registers are written with: an interval of equal registers "
                "used less than that)"
                if resolution
                else f"registers of {meters:,} meters are written finer than 0.000001 kWh"
            )
    except FileError as exc:
        summary.error = str(exc).removeprefix(f"{path}: ")
    except BaseException as exc:
        # A store write that failed (disk full), an interrupt: the run is recorded as stopped,
        # not as OK, and the failure goes on to the caller.
        summary.error = summary.error or f"stopped: {type(exc).__name__}: {exc}"
        raise
    finally:
        try:
            # The write in flight returns (or raises) before the run is reported: nothing is
            # counted as stored that is not.
            writer.close()
        except BaseException as exc:
            summary.error = summary.error or f"stopped: {type(exc).__name__}: {exc}"
            raise
        finally:
            summary.quarantine_file = quarantine.close()
            summary.held_files = [str(p) for p in quarantine.held_paths]
            _finish(run, summary)
    return summary


class _Writer:
    """Store writes beside the reading: the next batch is parsed while the last one is written
    (polars and Arrow let go of the GIL, so two cores share an import). One write in flight at
    a time, in the order submitted; each write's result is counted in the importing thread
    once it has returned, and the import waits for the last one before it reports."""

    def __init__(self):
        self.pool: ThreadPoolExecutor | None = None
        self.pending = None

    def submit(self, write, done) -> None:
        self.wait()
        if self.pool is None:
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="lianxin-import-write")
        self.pending = (self.pool.submit(write), done)

    def wait(self) -> None:
        if self.pending is not None:
            future, done = self.pending
            try:
                result = future.result()
            except BaseException:
                if future.done():
                    self.pending = None  # the write itself failed: raised here, once
                # else interrupted while it runs (Ctrl-C): close() waits and counts it
                raise
            self.pending = None
            done(result)

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self.pool is not None:
                self.pool.shutdown()


def _resolve(batch: Batch, directory: Directory, headers: dict[str, str]) -> pl.DataFrame:
    """Map records to known meters; quarantine (or register) unknown ones. Mutates batch.records.
    Returns the rejections for unknown meters: one per source line."""
    recs = batch.records
    if not recs.height or batch.kind == "replacements":
        return pl.DataFrame(schema=REJECTION_SCHEMA)
    if "_by_household" in recs.columns:
        return _resolve_households(batch, directory, headers)
    if batch.kind == "payments" and "account" in recs.columns:
        return _resolve_accounts(batch, headers)
    # (A reader's list of meters may hold one whose every point was refused: looked up too.)
    numbers = (recs["meter"] if batch.meters is None else batch.meters).unique().to_list()
    directory.lookup(numbers)
    unknown = [n for n in numbers if n not in directory.known]
    if unknown and directory.register_unknown:
        known_from = batch.info if batch.info is not None else recs
        info = known_from.filter(pl.col("meter").is_in(unknown)).unique("meter", keep="first")
        directory.register(info)
        unknown = [n for n in unknown if n not in directory.known]  # e.g. a number too long
    if batch.kind == "interval_registers":
        resolution = register_resolution(recs)
        if resolution is not None:
            directory.set_resolution(numbers, resolution)
    if not unknown and batch.kind != "payments":
        # Every meter known (the usual import): the records stay as they are, not copied
        # through two filters.
        batch.held = recs.clear()
        return pl.DataFrame(schema=REJECTION_SCHEMA)
    known = recs["meter"].is_in(unknown).not_()
    rejected = recs.filter(~known)
    batch.held = rejected
    batch.records = recs.filter(known)
    if batch.kind == "payments" and "_by_meter" in recs.columns:
        batch.records = batch.records.with_columns(
            account=pl.col("meter").replace_strict(directory.known, default=None)
        ).drop("meter", "_by_meter")
    return _unknown_rejections(rejected, "meter", headers.get("meter", "meter"), "meter")


def register_resolution(recs: pl.DataFrame) -> float | None:
    """The smallest step (kWh) of a batch's forward registers, from the decimals they are
    written with: 0.01 for "2214.11", 0.0001 for "2214.1125"; 0.0 for finer than 10⁻⁶ kWh.
    Taken over up to 20,000 rows spread across the batch: an export prints every meter's
    registers alike, and a register value that happens to end in 0 ("2214.10") must not make
    the step look coarser than it is, which one meter's few values could. None when the batch
    has too few distinct registers to tell."""
    step = max(1, recs.height // 20_000)
    sample = recs.gather_every(step).filter(pl.col("unit") == "kWh reg")["value"].to_numpy()
    sample = np.unique(sample[np.isfinite(sample)])
    if len(sample) < 8:
        return None
    decimals = np.full(len(sample), 7)
    for k in range(6, -1, -1):
        scaled = sample * 10.0**k
        # Within a thousandth of a whole number: float noise (2214.11 * 100 = 221411.00000000003)
        # is far below that, one more decimal digit is at least a tenth.
        decimals[np.abs(scaled - np.rint(scaled)) < 1e-3] = k
    most = int(decimals.max())
    return 0.0 if most > 6 else 10.0**-most


def _resolve_households(batch: Batch, directory: Directory, headers) -> pl.DataFrame:
    recs = batch.records.drop("_by_household")  # "meter" holds the household code here
    units = recs.unique("meter", keep="first")
    kinds = {
        r["meter"]: _meter_kind(r)
        for r in units.select(
            "meter", "unit", *(["kind"] if "kind" in units.columns else [])
        ).iter_rows(named=True)
    }
    found = directory.meters_of_households(list(kinds), kinds)
    missing = [c for c in kinds if c not in found]
    if missing and directory.register_unknown:
        info = units.filter(pl.col("meter").is_in(missing))
        directory.lookup(missing)
        clash = [c for c in missing if c in directory.known]
        if clash:  # a meter numbered like this household exists elsewhere: do not guess
            info = info.filter(~pl.col("meter").is_in(clash))
        directory.register(info, by_household=True)
        found = directory.meters_of_households(list(kinds), kinds)
    ok = recs["meter"].is_in(list(found))
    rejected = recs.filter(~ok)
    batch.held = rejected.rename({"meter": "household"})
    batch.records = recs.filter(ok).with_columns(pl.col("meter").replace_strict(found))
    return _unknown_rejections(
        rejected, "household", headers.get("household", "household"), "household"
    )


def _resolve_accounts(batch: Batch, headers) -> pl.DataFrame:
    recs = batch.records
    accounts = recs["account"].unique().to_list()
    known = set()
    for i in range(0, len(accounts), 900):  # chunked: SQLite caps the query parameters
        known.update(
            Meter.objects.filter(account_number__in=accounts[i : i + 900]).values_list(
                "account_number", flat=True
            )
        )
    ok = recs["account"].is_in(list(known))
    batch.held = recs.filter(~ok)
    batch.records = recs.filter(ok)
    return _unknown_rejections(
        recs.filter(~ok),
        "account",
        headers.get("account", "account"),
        "account",
        advice="import its meters first (readings or topology with --register-unknown)",
    )


def _unknown_rejections(
    rejected: pl.DataFrame,
    column: str,
    header: str,
    what: str,
    advice: str = "add it in the care records or re-import with --register-unknown",
):
    if not rejected.height:
        return pl.DataFrame(schema=REJECTION_SCHEMA)
    per_line = rejected.unique("_line", keep="first", maintain_order=True)
    return per_line.select(
        line=pl.col("_line"),
        field=pl.lit(header),
        value=pl.col(column).cast(pl.String),
        reason=pl.lit(f"unknown {what}: quarantined; {advice}"),
        code=pl.lit("unknown_meter"),
    )


def _store(
    batch: Batch, stores, summary: Summary, options: Options, rejections: list, writer: _Writer
) -> None:
    recs = batch.records
    if batch.kind == "readings":
        frame = recs.select("meter", "ts", "value", "unit")
        writer.submit(lambda: stores.readings.write(frame), lambda r: _add(summary, "readings", r))
        return
    if batch.kind == "interval_registers":
        from lianxin.ingest.readers.intervals import SET_NAME

        def counted(written: dict) -> None:
            for unit, result in written.items():
                _add(summary, SET_NAME.get(unit, unit), result)

        # One write for the registers and the energy derived from them: one file per day,
        # counted per unit for the summary.
        frame = recs.select("meter", "ts", "value", "unit")
        writer.submit(lambda: stores.readings.write_counted(frame, "unit"), counted)
        return
    writer.wait()  # the writes below read the store or are few: in order, in this thread
    if batch.kind == "registers":
        _add(
            summary, "registers", stores.readings.write(recs.select("meter", "ts", "value", "unit"))
        )
        daily, rej = _daily_energy(recs, stores.readings, options.time_zone)
        rejections.append(rej)
        if daily.height:
            _add(summary, "daily energy", stores.readings.write(daily))
    elif batch.kind == "events":
        _add(summary, "events", stores.events.write(recs.select("meter", "ts", "event", "detail")))
    elif batch.kind == "payments":
        cols = ["account", "ts", "amount", "channel"]
        _add(summary, "payments", stores.payments.write(recs.select(cols)))
    elif batch.kind == "balances":
        _add(summary, "balances", stores.balances.write(recs.select("meter", "ts", "balance")))


def _previous_registers(stores):
    """Earlier registers from the store, so a file's first point of each meter has its
    predecessor (yesterday's 23:45 before today's 00:00)."""

    def previous(meters: list[str], start, end) -> pl.DataFrame:
        return stores.readings.read(meters, start, end)

    return previous


def _replacements() -> dict:
    """Every 换表 record, by new meter number (replacements are rare: one dict per import)."""
    out: dict[str, list] = {}
    rows = MeterReplacement.objects.values_list(
        "new_meter__number", "old_meter__number", "replaced_at", "old_final", "new_initial"
    )
    for new, old, at, old_final, new_initial in rows:
        out.setdefault(new, []).append((old, at, old_final, new_initial))
    return out


def _register_notes(source, summary: Summary) -> None:
    notes = source.register_notes
    if notes.get("replaced_record"):
        summary.notes.append(
            f"{notes['replaced_record']:,} intervals across a meter replacement, from its 换表 "
            "record (old meter's last part + new meter's first)"
        )
    if notes.get("rollover"):
        summary.notes.append(
            f"{notes['rollover']:,} register rollovers (the register wrapped at its digit limit)"
        )
    if notes.get("replaced"):
        summary.notes.append(
            f"{notes['replaced']:,} meter replacements by --replaced-below (the interval "
            "across each is left as a gap)"
        )
    if source.skipped_rows.get("reactive"):
        summary.notes.append(
            f"{source.skipped_rows['reactive']:,} rows of reactive energy (无功) ignored"
        )
    spans = summary.written.get("gap-spanning energy")
    if spans and spans.total:
        summary.notes.append(
            f"{spans.total:,} differences span missing points: kept as one longer interval each "
            "(`kWh span`); --spread spreads them evenly"
        )


def _add(summary: Summary, name: str, result: WriteResult) -> None:
    summary.written[name] = summary.written.get(name, WriteResult()) + result


def _daily_energy(recs: pl.DataFrame, readings, tz: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Daily energy from frozen registers: energy of local day D = register(D+1) - register(D).
    Uses registers already in the store too, so consecutive days may come in separate files."""
    meters = recs["meter"].unique().to_list()
    start = recs["ts"].min() - timedelta(days=2)
    end = recs["ts"].max() + timedelta(days=2)
    regs = readings.read(meters, start, end).filter(pl.col("unit") == "kWh reg")
    lines = recs.select("meter", "ts", "_line")
    regs = (
        regs.join(lines, on=["meter", "ts"], how="left")
        .sort("meter", "ts")
        .with_columns(
            _day=pl.col("ts").dt.convert_time_zone(tz).dt.date(),
            _next=pl.col("value").shift(-1).over("meter"),
            _next_day=pl.col("ts").dt.convert_time_zone(tz).dt.date().shift(-1).over("meter"),
            _next_line=pl.col("_line").shift(-1).over("meter"),
        )
        .filter((pl.col("_next_day") - pl.col("_day")) == timedelta(days=1))
        # Only pairs that involve a register from this file: the rest were derived before.
        .filter(pl.col("_line").is_not_null() | pl.col("_next_line").is_not_null())
        .with_columns(energy=pl.col("_next") - pl.col("value"))
    )
    down = regs.filter(pl.col("energy") < 0)
    rej = down.select(
        line=pl.coalesce("_next_line", "_line"),
        field=pl.lit("register"),
        value=pl.col("_next").cast(pl.String),
        reason=pl.lit("register went down from ")
        + pl.col("value").cast(pl.String)
        + pl.lit(" on ")
        + pl.col("_day").cast(pl.String)
        + pl.lit(": meter replaced or reset? no daily energy derived"),
        code=pl.lit("register_down"),
    )
    daily = regs.filter(pl.col("energy") >= 0).select(
        "meter", "ts", value=pl.col("energy"), unit=pl.lit("kWh/d")
    )
    return daily, rej


def _count(rej: pl.DataFrame, summary: Summary, path: Path) -> None:
    if not rej.height:
        return
    for code, n in rej.group_by("code").len().iter_rows():
        summary.rejected[code] += n
    for r in rej.unique("code", keep="first").iter_rows(named=True):
        summary.reasons.setdefault(r["code"], r["reason"])
    # A few examples of each kind of problem, not twelve of the same one.
    room = EXAMPLES - len(summary.examples)
    picked = rej.filter(pl.int_range(pl.len()).over("code") < 3).head(room)
    for r in picked.iter_rows(named=True):
        where = f"{path.name}:{r['line']}" if r["line"] is not None else path.name
        what = f" field {r['field']}" if r["field"] else ""
        summary.examples.append(f"{where}{what} value {r['value']!r}: {r['reason']}")


def _finish(run: ImportRun, summary: Summary) -> None:
    t = summary.total()
    run.description = summary.description[:300]
    run.rows = summary.rows
    run.accepted, run.replaced, run.duplicate = t.accepted, t.replaced, t.duplicate
    run.rejected = sum(summary.rejected.values())
    run.rejected_by_reason = dict(summary.rejected)
    # The admin shows this to others: the error without the file's own text (see redact).
    run.message = redact(summary.error)
    run.quarantine_file = summary.quarantine_file
    run.finished_at = timezone.now()
    if summary.error and not summary.good:
        run.status = ImportRun.Status.FAILED
    elif run.rejected or summary.error:
        run.status = ImportRun.Status.PARTIAL
    else:
        run.status = ImportRun.Status.OK
    run.save()


def redact(message: str) -> str:
    """An error about a file without the file's own text: quoted fragments (a first line, a
    header) become '…', so ImportRun.message and watch summaries never carry what a file held
    (a link to a secret once put its first line there)."""
    message = re.sub(r"'[^'\n]*'", "'…'", message)
    return re.sub(r'"[^"\n]*"', '"…"', " ".join(message.split()))[:2000]
