"""The readings store and its siblings: partitioned Parquet datasets in the data directory.

Layout (one folder per dataset, one sub-folder per UTC day of `ts`):

    readings/day=2024-03-01/part-<received_ns>-<pid>-<n>.parquet
    readings/day=2024-03-01/part-...-c.parquet      (a compacted file)

Partitions are by the *UTC* date of `ts` (the start of the interval): unambiguous, DST-free and the
same on every machine. A local calendar day (in LIANXIN_TIME_ZONE) therefore spans two partitions.

Each write appends one new file per day it touches, sorted by the entity column (meter) then ts (per
value of the other key columns when a write holds several, e.g. an import's registers and the energy
derived from them: one run per unit); it never rewrites a day. A batch that already comes in that
order is not sorted again, and a write reads back only the stored files whose footer ranges of every
key column overlap its own (a bulk import of new meters reads nothing). Files are written to a
temporary name, fsynced and renamed, so a reader never sees half a file and a successful `write()`
survives a crash. Writers take an exclusive file lock (`.lock`), so HTTP threads, the MQTT
subscriber and an import can write at once.

Duplicates and corrections: a record is identified by its key (readings: meter, ts, unit). On
write, an incoming record whose value equals the latest stored value is a duplicate and is not
written; a different value is a correction and is written with its `received_at`. Reads return,
per key, the value with the latest `received_at`. Compaction merges the small files of a day into
one sorted file and keeps every distinct (value, received_at) so the history of corrections stays.

Damaged files: a file that cannot be read (truncated, no footer, a page failing its CRC32
checksum) is moved to <dataset>/damaged/day=…/ with a log line naming it and a record in
<dataset>/damaged/log.jsonl (damaged_files() counts them for the data-health page); reads and
writes go on with the other files. `lianxin store check [--repair]` verifies every file.

No Django here: the engine and Spark tasks read these datasets directly.
"""

from lianxin.store.dataset import (
    BalancesStore,
    Dataset,
    EventsStore,
    PaymentsStore,
    ReadingsStore,
    WriteResult,
    damaged_files,
    open_stores,
)

__all__ = [
    "BalancesStore",
    "Dataset",
    "EventsStore",
    "PaymentsStore",
    "ReadingsStore",
    "WriteResult",
    "damaged_files",
    "open_stores",
]
