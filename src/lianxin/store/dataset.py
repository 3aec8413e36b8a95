"""Append-only, day-partitioned Parquet datasets with read-time resolution of corrections.

See the package docstring for the layout and the rules. One `Dataset` class does the work; each
concrete store (readings, events, payments, balances) only declares its columns and key.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from lianxin.atomic import fsync_dir, staged_write
from lianxin.meterdata import STORED_EVENTS, UTC_US
from lianxin.store import wake

_counter = itertools.count()
log = logging.getLogger("lianxin.store")
# What a damaged Parquet file makes the readers raise: errors, and polars' Rust panics (which are
# BaseExceptions, not Exceptions).
READ_FAILURES = (Exception, pl.exceptions.PanicException)
# The folder (under each dataset) damaged files are moved to, with a log of why.
DAMAGED = "damaged"


@dataclass
class WriteResult:
    """What one write did. accepted: new keys; replaced: corrections written (a different value
    for a key already stored, or superseded within the batch); duplicate: identical, not written."""

    accepted: int = 0
    replaced: int = 0
    duplicate: int = 0

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(
            self.accepted + other.accepted,
            self.replaced + other.replaced,
            self.duplicate + other.duplicate,
        )

    @property
    def total(self) -> int:
        return self.accepted + self.replaced + self.duplicate


class Dataset:
    """A folder of day partitions. Subclasses set the class attributes below."""

    entity: str = "meter"  # sorted within a file; what read() filters on
    key: tuple[str, ...] = ()  # identity of a record; always includes entity and "ts"
    values: tuple[str, ...] = ()  # compared to tell a duplicate from a correction
    schema: dict[str, pl.DataType] = {}  # every column except received_at
    defaults: dict[str, object] = {}  # optional columns and the value used when absent

    # A file of fewer rows is "small" and is merged by compaction; bigger ones stay put, so the
    # cost of compaction does not grow with the size of the day (each row is rewritten a couple
    # of times at most, not once per compaction).
    small_file_rows = 1_000_000
    # write() compacts a day once it holds this many small files.
    auto_compact_files = 48
    row_group_rows = 256 * 1024

    def __init__(self, root: Path | str, doorbell: Path | str | None = None):
        self.root = Path(root)
        # The data directory whose doorbell a write rings (lianxin.store.wake): open_stores
        # sets it, so the monitor wakes on new data instead of waiting for its timer.
        self.doorbell = doorbell
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.root / ".lock"
        self._range_cache: dict[Path, tuple | None] = {}
        self._row_cache: dict[Path, int] = {}

    # ---- writing ----------------------------------------------------------------------------

    def write(self, frame: pl.DataFrame | pa.Table) -> WriteResult:
        """Store records durably. Returns what happened to them; see WriteResult."""
        out = WriteResult()
        for counts in self.write_counted(frame).values():
            out = out + counts
        return out

    def write_counted(self, frame: pl.DataFrame | pa.Table, by: str | None = None) -> dict:
        """write(), with what happened counted per value of the key column `by` (e.g. readings
        per unit: an import writes registers and the energy derived from them in one write, one
        file per day, and its summary counts each apart). {value: WriteResult}; by=None: {None:
        WriteResult}."""
        df = self._normalise(frame)
        if df.height == 0:
            return {}
        if by is not None and by not in self.key:
            raise ValueError(f"{type(self).__name__}: can count by a key column only, not {by!r}")
        df = df.with_columns(_day=pl.col("ts").dt.date())
        day_list = df["_day"].unique().sort()
        if len(day_list) <= 3:
            # (A filter per day: half the time of partition_by for the one or two UTC days of a
            # typical batch.)
            days = [(day, df.filter(pl.col("_day") == day).drop("_day")) for day in day_list]
        else:
            days = sorted(
                (day, part)
                for (day,), part in df.partition_by(
                    "_day", maintain_order=True, include_key=False, as_dict=True
                ).items()
            )
        fates = []  # per day: (column `by`, fate) of every row: 0 new, 1 replaced, 2 duplicate
        parts = []
        for day, part in days:
            part, superseded, bounds = self._lay_out(part, by)
            parts.append((day, part, bounds))
            fates.append(superseded)
        with self._locked():
            # All or nothing across days: every day's file is written and fsynced under a
            # temporary name first, and only then are they all renamed into place. A day that
            # cannot be written (read-only, disk full) fails the write before any day is stored.
            staged: list[tuple[Path, Path]] = []
            try:
                for day, part, bounds in parts:
                    fresh, fate = self._classify(day, part, by, bounds)
                    fates.append(fate)
                    if fresh.height:
                        staged.append(self._stage_file(day, fresh, prefix="part", is_sorted=True))
            except BaseException:
                for tmp, _final in staged:
                    tmp.unlink(missing_ok=True)
                raise
            for tmp, final in staged:
                os.rename(tmp, final)
            for folder in {final.parent for _tmp, final in staged}:
                fsync_dir(folder)
            for day, _part, _bounds in parts:
                if len(self._small_files(day)) >= self.auto_compact_files:
                    self._compact_day(day, full=False)
        if staged and self.doorbell is not None:
            # After the rename and the folder fsync: a woken monitor finds the data there.
            wake.ring(self.doorbell, wake.DATA)
        return _tally(fates)

    def _layout(self, df: pl.DataFrame, by: str | None = None) -> tuple[list[str], list[str]]:
        """How a file's rows are ordered: (run columns, sorted columns). The key columns other
        than entity and ts that vary (readings: unit) come in runs, one run per value; within a
        run, rows are sorted by entity then ts. So a file is laid out by entity then ts, per
        unit, and a batch that comes that way (an import's registers, then their energies) need
        not be sorted again."""
        runs = [
            c
            for c in self.key
            if c not in (self.entity, "ts") and (c == by or df[c].min() != df[c].max())
        ]
        return runs, [self.entity, "ts"]

    def _lay_out(
        self, df: pl.DataFrame, by: str | None
    ) -> tuple[pl.DataFrame, pl.DataFrame, dict | None]:
        """One day's batch in file order, a key sent twice kept once (the last one sent wins:
        they arrived together). Returns (rows to store, fates of the rows dropped, the key
        columns' (min, max) when they came for free, else None)."""
        runs, order = self._layout(df, by)
        if len(runs) <= 1:
            bounds = self._file_order_bounds(df, runs[0] if runs else None)
            if bounds is not None:
                return df, _fates(df.clear(), by, 0), bounds
        e, t = pl.col(self.entity), pl.col("ts")
        # Strictly ascending within each run: in file order with every key once. Imports come
        # like that (a meter's points in time order), and then nothing is sorted or compared
        # again; otherwise a stable sort makes repeats of a key neighbours in the order sent.
        up = (e < e.shift(-1)) | ((e == e.shift(-1)) & (t < t.shift(-1)))
        if runs:
            same_run = pl.all_horizontal([pl.col(c) == pl.col(c).shift(-1) for c in runs])
            run = pl.struct(runs) if len(runs) > 1 else pl.col(runs[0])
            checks = [
                (~same_run | up).fill_null(True).all().alias("strict"),
                (run.rle_id().max() + 1 == run.n_unique()).alias("runs"),
            ]
        else:
            checks = [up.fill_null(True).all().alias("strict")]
        if all(df.select(checks).row(0)):
            return df, _fates(df.clear(), by, 0), None
        df = df.sort([*runs, *order], maintain_order=True)
        same_key_next = pl.all_horizontal([pl.col(c) == pl.col(c).shift(-1) for c in self.key])
        same_value = pl.all_horizontal([pl.col(c) == pl.col(c).shift(-1) for c in self.values])
        flags = df.select(sup=same_key_next.fill_null(False), same=same_value.fill_null(False))
        superseded = flags["sup"]
        if not superseded.any():
            return df, _fates(df.clear(), by, 0), None
        dropped = df.filter(superseded).with_columns(_same=flags.filter(superseded)["same"])
        fates = _fates(dropped, by, pl.when(pl.col("_same")).then(2).otherwise(1))
        return df.filter(~superseded), fates, None

    def _file_order_bounds(self, df: pl.DataFrame, run: str | None) -> dict | None:
        """The key columns' {column: (min, max)} if `df` is already in file order (each value
        of `run` in one run; within it, strictly ascending by entity then ts), else None.
        Cheaper than comparing (entity, ts) row with row: the entity's order is checked per run
        by is_sorted, the times as integers, and the entities compared only where the time
        does not go up (a new entity, a few in a hundred rows)."""
        n = df.height
        if n < 2:
            return None
        if run is None:
            starts = np.zeros(1, dtype=np.int64)
        else:
            runs = df[run].rle().struct.unnest()
            values = runs["value"].to_list()
            if len(set(values)) != len(values):
                return None  # a value in two runs
            lengths = runs["len"].to_numpy().astype(np.int64)
            starts = np.cumsum(lengths) - lengths
        ends = np.append(starts[1:], n)
        entity = df[self.entity]
        for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
            if not entity.slice(lo, hi - lo).is_sorted():
                return None
        t = df["ts"].dt.epoch("us").to_numpy()
        down = np.flatnonzero(t[1:] <= t[:-1])  # pairs (i, i + 1) whose time does not go up
        down = down[~np.isin(down + 1, starts)]  # (not across a run's boundary)
        if len(down) and not (entity.gather(down) < entity.gather(down + 1)).all():
            return None
        firsts, lasts = entity.gather(starts), entity.gather(ends - 1)
        bounds = {
            self.entity: (firsts.min(), lasts.max()),
            "ts": (df["ts"].min(), df["ts"].max()),
        }
        for c in self.key:
            if c not in bounds:
                if c == run:
                    bounds[c] = (min(values), max(values))
                else:
                    bounds[c] = (df[c].min(), df[c].max())
        return bounds

    def _normalise(self, frame: pl.DataFrame | pa.Table) -> pl.DataFrame:
        df = pl.from_arrow(frame) if isinstance(frame, pa.Table) else frame
        if not isinstance(df, pl.DataFrame):
            raise TypeError(f"expected a polars DataFrame or an Arrow table, got {type(frame)}")
        allowed = {*self.schema, "received_at"}
        extra = [c for c in df.columns if c not in allowed]
        if extra:
            raise ValueError(f"{type(self).__name__}: unknown column(s) {extra}")
        missing = [c for c in self.schema if c not in df.columns and c not in self.defaults]
        if missing:
            raise ValueError(f"{type(self).__name__}: missing column(s) {missing}")
        ts_type = df.schema["ts"]
        if not isinstance(ts_type, pl.Datetime) or ts_type.time_zone is None:
            raise ValueError(f"ts must be a timezone-aware Datetime (UTC), got {ts_type}")
        now = datetime.now(UTC)
        cols = []
        for name, dtype in self.schema.items():
            if name in df.columns:
                expr = pl.col(name)
                if name == "ts":
                    expr = expr.dt.convert_time_zone("UTC")
                cols.append(expr.cast(dtype))
            else:
                cols.append(pl.lit(self.defaults[name], dtype=dtype).alias(name))
        if "received_at" in df.columns:
            rtype = df.schema["received_at"]
            if not isinstance(rtype, pl.Datetime) or rtype.time_zone is None:
                raise ValueError(f"received_at must be timezone-aware, got {rtype}")
            cols.append(pl.col("received_at").dt.convert_time_zone("UTC").cast(UTC_US))
        else:
            cols.append(pl.lit(now, dtype=UTC_US).alias("received_at"))
        df = df.select(cols)
        nulls = [c for c in df.columns if df[c].null_count()]
        if nulls:
            raise ValueError(f"{type(self).__name__}: null values in column(s) {nulls}")
        for name, dtype in self.schema.items():
            if dtype == pl.Float64 and df[name].is_nan().any():
                raise ValueError(f"{type(self).__name__}: NaN in column {name}")
        return df

    def _classify(
        self, day: date, part: pl.DataFrame, by: str | None = None, bounds: dict | None = None
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Split a batch of one day into records to write, and the fate of each record (new,
        corrected or duplicate of what is stored; see _fates). `bounds`: the key columns'
        {column: (min, max)} if already known."""
        if bounds is None:
            bounds = {c: (part[c].min(), part[c].max()) for c in self.key}
        # Only files whose key ranges (entity, ts, and the other key columns: a file of
        # registers holds no energy) overlap the batch can hold its keys: a bulk import of new
        # meters, or of a new unit, reads nothing back.
        files = []
        for f in self._files(day):
            r = self._ranges(f)
            if r is _SET_ASIDE:
                continue
            if r is None or all(
                c not in r[4] or (r[4][c][0] <= hi and lo <= r[4][c][1])
                for c, (lo, hi) in bounds.items()
            ):
                files.append(f)
        if not files:
            return part, _fates(part, by, 0)
        lo, hi = bounds[self.entity]
        ts_min, ts_max = bounds["ts"]
        ids = part[self.entity].unique()
        stored = self._collect(
            files,
            lambda lf: (
                lf
                # The ranges let Parquet row-group statistics skip most of a sorted file.
                .filter(
                    pl.col(self.entity).is_between(pl.lit(lo), pl.lit(hi))
                    & pl.col("ts").is_between(ts_min, ts_max)
                )
                .filter(pl.col(self.entity).is_in(ids.implode()))
                .select(*self.key, *self.values, "received_at")
            ),
        )
        if stored.height == 0:
            return part, _fates(part, by, 0)
        if len(files) > 1 or not files[0].name.startswith("part-"):
            # (One appended file holds each key once: write() keeps the last of a batch.)
            stored = _latest(stored, self.key)
        stored = stored.drop("received_at")
        stored = stored.rename({v: f"_old_{v}" for v in self.values}).with_columns(
            _known=pl.lit(True)
        )
        # Only the rows of entities found stored are joined (a batch that overlaps a stored
        # file by one meter joins that meter's rows); the fates go back to their places, so
        # the rows stay in file order (write() laid them out).
        idx = part[self.entity].is_in(stored[self.entity].unique().implode()).arg_true()
        joined = part[idx].join(stored, on=list(self.key), how="left", maintain_order="left")
        same = pl.all_horizontal([pl.col(v) == pl.col(f"_old_{v}") for v in self.values])
        known = pl.col("_known").fill_null(False)
        fate = joined.select(
            pl.when(known & same.fill_null(False)).then(2).when(known).then(1).otherwise(0)
        ).to_series()
        if not (fate != 0).any():
            # No key stored yet (an import's chunk that shares a meter with the one before,
            # at later times): all new, as without a stored file, and the batch not copied.
            return part, _fates(part, by, 0)
        fate = pl.zeros(part.height, dtype=pl.Int32, eager=True).scatter(idx, fate)
        part = part.with_columns(_fate=fate)
        fresh = part.filter(pl.col("_fate") != 2).drop("_fate")
        return fresh, _fates(part, by, pl.col("_fate"))

    def _sort_columns(self, df: pl.DataFrame) -> list[str]:
        # A key column with one value throughout (a batch of kWh only) need not be sorted on.
        runs, order = self._layout(df)
        return [*runs, *order]

    def _ranges(self, path: Path) -> tuple | None:
        """(min entity, max entity, min ts, max ts, {key column: (min, max)}) of a file from its
        footer statistics, cached: a file never changes once it has its name. None when the
        entity's or ts's statistics are missing; a key column without them is left out of the
        dict (read as "may hold anything")."""
        cached = self._range_cache.get(path)
        if cached is not None or path in self._range_cache:
            return cached
        if len(self._range_cache) > 100_000:  # files compacted away by other processes
            self._range_cache.clear()
            self._row_cache.clear()
        try:
            meta = pq.read_metadata(path)
        except FileNotFoundError:
            return None
        except READ_FAILURES as exc:  # a truncated file has no footer
            self.set_aside(path, _why(exc))
            return _SET_ASIDE
        arrow = meta.schema.to_arrow_schema()
        found = {}
        for c in self.key:
            try:
                found[c] = _column_range(meta, arrow, c)
            except (ValueError, TypeError, KeyError, UnicodeDecodeError):
                found[c] = None
        bounds = {c: r for c, r in found.items() if r is not None}
        ranges = None
        if found.get(self.entity) is not None and found.get("ts") is not None:
            ranges = (*found[self.entity], *found["ts"], bounds)
        self._range_cache[path] = ranges
        return ranges

    def _write_file(self, day: date, df: pl.DataFrame, prefix: str, is_sorted=False) -> Path:
        tmp, final = self._stage_file(day, df, prefix, is_sorted)
        os.rename(tmp, final)
        fsync_dir(final.parent)
        return final

    def _stage_file(
        self, day: date, df: pl.DataFrame, prefix: str, is_sorted=False
    ) -> tuple[Path, Path]:
        """Write a day's file under a temporary name, fsynced: (temporary, final) names."""
        folder = self._day_dir(day)
        folder.mkdir(parents=True, exist_ok=True)
        if not is_sorted:
            df = df.sort(self._sort_columns(df))
        # Appends take the fast codec (they are on the ingest path); compaction rewrites them
        # with zstd, about half the size.
        codec, level = ("lz4", None) if prefix == "part" else ("zstd", 3)
        name = f"{prefix}-{time.time_ns():019d}-{os.getpid()}-{next(_counter)}"
        tmp = folder / f".{name}.tmp"
        final = folder / f"{name}.parquet"
        with staged_write(tmp) as fh:
            # Page checksums (CRC32) let `lianxin store check` tell a flipped bit from data.
            pq.write_table(
                # Text as string views, as polars holds it (no copy into Arrow's large strings:
                # 60 ms a 2.5 M-row batch). The Parquet types say what each column is; the
                # Arrow schema is not stored, so a reader gets plain strings, as from Spark.
                df.to_arrow(compat_level=pl.CompatLevel.newest()),
                fh,
                store_schema=False,
                compression=codec,
                compression_level=level,
                row_group_size=self.row_group_rows,
                write_page_checksum=True,
                # Dictionaries for the text columns (a day's meters and units repeat); numbers
                # and times gain little from one and cost 40 % of the write time.
                use_dictionary=[c for c, t in self.schema.items() if t == pl.String],
            )
        return tmp, final

    @contextmanager
    def _locked(self):
        # flock: one writer at a time across processes and threads (each call opens its own
        # file description, so threads of one process exclude each other too).
        with open(self._lock_path, "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # ---- compaction -------------------------------------------------------------------------

    def compact(self, day: date | None = None, *, full: bool = False) -> int:
        """Merge the small files of one day (or of every day) into one sorted file. With full=True
        merge all files of the day. Returns the number of files removed."""
        removed = 0
        with self._locked():
            for d in [day] if day else self.days():
                removed += self._compact_day(d, full=full)
        return removed

    def _compact_day(self, day: date, full: bool) -> int:
        files = self._files(day) if full else self._small_files(day)
        self._remove_stale_temporaries(day)
        if len(files) < 2:
            return 0
        merged = self._collect(
            files,
            lambda lf: lf.unique(subset=[*self.key, *self.values, "received_at"], keep="first"),
        )
        files = [f for f in files if f.exists()]  # without the ones set aside as damaged
        self._write_file(day, merged, prefix="compact")
        # A reader that listed the old files may briefly see both old and new: identical rows,
        # resolved at read. A crash here leaves the same harmless overlap for the next compaction.
        for f in files:
            f.unlink(missing_ok=True)
            self._range_cache.pop(f, None)
            self._row_cache.pop(f, None)
        fsync_dir(self._day_dir(day))
        return len(files)

    def _remove_stale_temporaries(self, day: date):
        cutoff = time.time() - 3600
        for tmp in self._day_dir(day).glob(".*.tmp"):
            if tmp.stat().st_mtime < cutoff:  # left by a writer that died mid-write
                tmp.unlink(missing_ok=True)

    # ---- reading ----------------------------------------------------------------------------

    def read(
        self,
        ids: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        all_versions: bool = False,
        ordered: bool = True,
    ) -> pl.DataFrame:
        """Records with start <= ts < end for the given entities (None: all), sorted by entity and
        ts (unless ordered=False: the monitor joins them, and sorting a million rows costs a
        second): the latest value per key, or every stored version with all_versions=True."""
        days = self.days()
        if start is not None:
            days = [d for d in days if d >= _utc(start).date()]
        if end is not None:
            last = (_utc(end) - timedelta(microseconds=1)).date()
            days = [d for d in days if d <= last]
        for attempt in range(5):
            files = [f for d in days for f in self._files(d)]
            if start is not None or end is not None:
                # Files whose footer says they hold no ts in the range are not opened: a step
                # of the monitor reads the newest interval, not the whole day.
                files = [f for f in files if self._may_hold(f, start, end)]
            if not files:
                return self.empty()
            lf = self._scan(files)
            if ids is not None:
                lf = lf.filter(
                    pl.col(self.entity).is_in(pl.Series(list(ids), dtype=pl.String).implode())
                )
            if start is not None:
                lf = lf.filter(pl.col("ts") >= _utc(start))
            if end is not None:
                lf = lf.filter(pl.col("ts") < _utc(end))
            try:
                df = lf.collect()
                break
            except READ_FAILURES as exc:
                if _is_missing_file(exc):
                    # A compaction removed a file between listing and reading: list again.
                    if attempt == 4:
                        raise
                elif not self.sweep(files) or attempt == 4:
                    raise  # no damaged file explains it
        if not all_versions and not (len(files) == 1 and files[0].name.startswith("part-")):
            # (One appended file holds each key once: write() keeps the last of a batch.)
            df = _latest(df, self.key)
        return df.sort(self.entity, "ts") if ordered else df

    def _may_hold(self, path: Path, start: datetime | None, end: datetime | None) -> bool:
        r = self._ranges(path)
        if r is _SET_ASIDE:
            return False
        if r is None:
            return True
        return (end is None or r[2] < _utc(end)) and (start is None or r[3] >= _utc(start))

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema={**self.schema, "received_at": UTC_US})

    def days(self) -> list[date]:
        out = []
        for p in self.root.glob("day=*"):
            try:
                out.append(date.fromisoformat(p.name[4:]))
            except ValueError:
                continue
        return sorted(out)

    def _day_dir(self, day: date) -> Path:
        return self.root / f"day={day.isoformat()}"

    def _files(self, day: date) -> list[Path]:
        return sorted(self._day_dir(day).glob("*.parquet"))

    def _small_files(self, day: date) -> list[Path]:
        return [f for f in self._files(day) if self._rows(f) < self.small_file_rows]

    def _rows(self, path: Path) -> int:
        """Rows in a file, from its footer, cached (a file never changes once named)."""
        rows = self._row_cache.get(path)
        if rows is None:
            try:
                rows = self._row_cache[path] = pq.read_metadata(path).num_rows
            except FileNotFoundError:
                return self.small_file_rows  # being compacted away: neither small nor counted
            except READ_FAILURES as exc:
                self.set_aside(path, _why(exc))
                return self.small_file_rows
        return rows

    # ---- damaged files ----------------------------------------------------------------------

    def _collect(self, files: list[Path], build) -> pl.DataFrame:
        """build(scan of files).collect(); a file that makes it fail is checked and, if damaged,
        set aside, and the rest is read again: one bad file never takes the others down."""
        while True:
            lf = self._scan(files) if files else self.empty().lazy()
            try:
                return build(lf).collect()
            except READ_FAILURES as exc:
                if _is_missing_file(exc) or not files or not self.sweep(files):
                    raise
                files = [f for f in files if f.exists()]

    def backup(self, dest: Path | str) -> tuple[int, int, int]:
        """Bring a copy of this dataset at `dest` up to this instant; returns (files copied,
        files already there, files removed from the copy). The files present at one instant
        are hard-linked under the writers' lock (milliseconds, on the same disk), so writers
        and compaction go on while they are copied; a file's name never changes its content,
        so a file already in the copy is not copied again, and files compacted away since the
        last backup are removed from it. Each copy is fsynced before it is renamed into place."""
        dest = Path(dest)
        self._remove_dead_backup_pins()
        pinned = self.root / f".backup-{os.getpid()}-{next(_counter)}"
        copied = kept = removed = 0
        try:
            with self._locked():
                held = []
                for f in (f for d in self.days() for f in self._files(d)):
                    (pinned / f.parent.name).mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(f, pinned / f.parent.name / f.name)
                    except FileNotFoundError:
                        continue  # set aside as damaged meanwhile (readers do that unlocked)
                    held.append(pinned / f.parent.name / f.name)
            for f in held:  # the pinned links: compaction cannot take them away
                folder = dest / f.parent.name
                target = folder / f.name
                if target.exists() and target.stat().st_size == f.stat().st_size:
                    kept += 1
                    continue
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".{f.name}.tmp"
                with open(f, "rb") as src, staged_write(tmp) as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.replace(tmp, target)
                copied += 1
            wanted = {(f.parent.name, f.name) for f in held}
            for folder in {dest / f.parent.name for f in held}:
                fsync_dir(folder)
            if held:
                fsync_dir(dest)  # the new day folders themselves
            for old in dest.glob("day=*/*.parquet"):
                if (old.parent.name, old.name) not in wanted:
                    old.unlink()
                    removed += 1
        finally:
            shutil.rmtree(pinned, ignore_errors=True)
        return copied, kept, removed

    def _remove_dead_backup_pins(self) -> None:
        """Pinned links of a backup whose process died (kill -9): they would hold the disk
        space of compacted-away files for ever."""
        for folder in self.root.glob(".backup-*"):
            try:
                pid = int(folder.name.split("-")[1])
                os.kill(pid, 0)
            except (ValueError, IndexError, ProcessLookupError):
                shutil.rmtree(folder, ignore_errors=True)
            except PermissionError:
                pass  # alive, another user's

    def verify(self, path: Path) -> str | None:
        """Why a file is damaged (footer, page checksums, decoding, schema), or None if sound."""
        try:
            pf = pq.ParquetFile(path, page_checksum_verification=True)
            table = pf.read()
            pl.from_arrow(table)
            missing = [c for c in (*self.schema, "received_at") if c not in table.column_names]
            if missing:
                return f"missing column(s) {', '.join(missing)}"
        except FileNotFoundError:
            return None
        except READ_FAILURES as exc:
            return _why(exc)
        return None

    def sweep(self, files: list[Path]) -> list[Path]:
        """Check files; set the damaged ones aside. Returns those set aside."""
        bad = []
        for f in files:
            why = self.verify(f)
            if why is not None and self.set_aside(f, why):
                bad.append(f)
        return bad

    def set_aside(self, path: Path, why: str) -> Path | None:
        """Move a damaged file to <dataset>/damaged/<day>/ and say so, naming it (a log line and
        a record in damaged/log.jsonl, which damaged_files() and the data-health page read)."""
        dest_dir = self.root / DAMAGED / path.parent.name
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / path.name
        try:
            os.replace(path, dest)
        except FileNotFoundError:
            return None  # another process set it aside first
        self._range_cache.pop(path, None)
        self._row_cache.pop(path, None)
        record = {
            "file": str(path.relative_to(self.root)),
            "moved_to": str(dest.relative_to(self.root)),
            "day": path.parent.name.removeprefix("day="),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "reason": why,
        }
        with open(self.root / DAMAGED / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        log.error("damaged file %s set aside to %s: %s", path, dest, why)
        return dest

    def damaged(self) -> list[dict]:
        """The files set aside as damaged, oldest first (see set_aside)."""
        return self.damaged_at(self.root)

    @staticmethod
    def damaged_at(root: Path) -> list[dict]:
        path = Path(root) / DAMAGED / "log.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash
        return out

    def _scan(self, files: list[Path]) -> pl.LazyFrame:
        return pl.scan_parquet(
            files, hive_partitioning=False, schema={**self.schema, "received_at": UTC_US}
        )


def _column_range(meta, arrow: pa.Schema, column: str) -> tuple | None:
    """(min, max) of a column over a file's row groups from the raw footer statistics (the raw
    values: converting a timestamp's would import pandas, three seconds), or None."""
    i = arrow.names.index(column)
    kind = arrow.field(i).type
    lo = hi = None
    for g in range(meta.num_row_groups):
        st = meta.row_group(g).column(i).statistics
        if st is None or not st.has_min_max:
            return None
        a, b = st.min_raw, st.max_raw
        if pa.types.is_timestamp(kind):
            per_us = {"s": 1e-6, "ms": 1e-3, "us": 1, "ns": 1e3}[kind.unit]
            # Floor and ceiling to the microsecond: the range may only grow.
            a = _EPOCH + timedelta(microseconds=math.floor(a / per_us))
            b = _EPOCH + timedelta(microseconds=math.ceil(b / per_us))
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            a, b = a.decode(), b.decode()
        else:
            return None
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    return None if lo is None else (lo, hi)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _fates(df: pl.DataFrame, by: str | None, fate) -> pl.DataFrame:
    """How many rows of df had each fate (0 new, 1 replaced, 2 duplicate), per value of the
    column `by`: (_by, _fate, n). `fate`: one fate for all rows, or an expression per row."""
    if by is None:
        if isinstance(fate, int):
            return pl.DataFrame(
                {"_by": [None], "_fate": [fate], "n": [df.height]},
                schema={"_by": pl.String, "_fate": pl.Int32, "n": pl.UInt32},
            )
        keys = [pl.lit(None, dtype=pl.String).alias("_by")]
    elif isinstance(fate, int):
        # One fate for all (a batch of new records): counted per run of `by` (an import's
        # batch holds a run per unit), not grouped row by row.
        counts: dict = {}
        for n, value in df[by].cast(pl.String).rle().struct.unnest().iter_rows():
            counts[value] = counts.get(value, 0) + n
        return pl.DataFrame(
            {"_by": list(counts), "_fate": [fate] * len(counts), "n": list(counts.values())},
            schema={"_by": pl.String, "_fate": pl.Int32, "n": pl.UInt32},
        )
    else:
        keys = [pl.col(by).cast(pl.String).alias("_by")]
    if isinstance(fate, int):
        fate = pl.lit(fate)
    return df.group_by(*keys, fate.cast(pl.Int32).alias("_fate")).agg(n=pl.len().cast(pl.UInt32))


def _tally(fates: list[pl.DataFrame]) -> dict:
    """{value of `by`: WriteResult} from the counted fates of a write's rows."""
    out: dict = {}
    for frame in fates:
        for value, fate, n in frame.iter_rows():
            r = out.setdefault(value, WriteResult())
            if fate == 0:
                r.accepted += n
            elif fate == 1:
                r.replaced += n
            else:
                r.duplicate += n
    return out


_SET_ASIDE = ("set aside",)  # _ranges() of a file it found damaged and moved


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _latest(df: pl.DataFrame, key: Sequence[str]) -> pl.DataFrame:
    return df.sort("received_at").unique(subset=list(key), keep="last")


def _aware(t) -> datetime:
    # Parquet statistics of a UTC timestamp column come back naive or aware, by pyarrow version.
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError(f"{t} has no time zone: pass an aware datetime")
    return t.astimezone(UTC)


def _is_missing_file(exc: BaseException) -> bool:
    return isinstance(exc, FileNotFoundError) or "No such file" in str(exc)


class ReadingsStore(Dataset):
    """Interval readings. ts is the START of the interval (UTC). unit: one of lianxin.meterdata's
    UNITS, which says what each measures: "kWh" is the energy used in the interval; "kWh/d" the
    energy of the local day starting at ts (from daily frozen registers); "kWh reg" a frozen
    register (cumulative) value at ts; "m3" water or gas used in the interval; "kW", "V" as
    named."""

    entity = "meter"
    key = ("meter", "ts", "unit")
    values = ("value",)
    schema = {"meter": pl.String, "ts": UTC_US, "value": pl.Float64, "unit": pl.String}
    defaults = {}


class EventsStore(Dataset):
    """Meter events. event is one of EVENT_KINDS; detail is free text (e.g. the voltage)."""

    EVENT_KINDS = STORED_EVENTS
    entity = "meter"
    key = ("meter", "ts", "event")
    values = ("detail",)
    schema = {"meter": pl.String, "ts": UTC_US, "event": pl.String, "detail": pl.String}
    defaults = {"detail": ""}


class PaymentsStore(Dataset):
    """Payment records per account (户号): amount in yuan, channel as the export names it."""

    entity = "account"
    key = ("account", "ts", "channel")
    values = ("amount",)
    schema = {"account": pl.String, "ts": UTC_US, "amount": pl.Float64, "channel": pl.String}
    defaults = {"channel": ""}


class BalancesStore(Dataset):
    """Prepaid (费控) balances per meter, in yuan, as of ts."""

    entity = "meter"
    key = ("meter", "ts")
    values = ("balance",)
    schema = {"meter": pl.String, "ts": UTC_US, "balance": pl.Float64}
    defaults = {}


@dataclass(frozen=True)
class Stores:
    readings: ReadingsStore
    events: EventsStore
    payments: PaymentsStore
    balances: BalancesStore

    def __iter__(self) -> Iterator[Dataset]:
        return iter((self.readings, self.events, self.payments, self.balances))


def damaged_files(home: Path | str) -> list[dict]:
    """Every file set aside as damaged, in any dataset under a data directory (dataset named)."""
    home = Path(home)
    out = []
    for name in ("readings", "events", "payments", "balances"):
        path = home / name / DAMAGED / "log.jsonl"
        if path.exists():
            out.extend({"dataset": name, **r} for r in Dataset.damaged_at(home / name))
    return out


def open_stores(home: Path | str) -> Stores:
    """The four datasets under a data directory (LIANXIN_HOME)."""
    home = Path(home)
    return Stores(
        ReadingsStore(home / "readings", doorbell=home),
        EventsStore(home / "events", doorbell=home),
        PaymentsStore(home / "payments", doorbell=home),
        BalancesStore(home / "balances", doorbell=home),
    )
