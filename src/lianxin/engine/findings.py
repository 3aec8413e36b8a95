"""A finding: what the engine noticed about one home (or one transformer area), and why.

This is the contract between the engine and everything after it (alerts, replay files, Spark).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class Kind(StrEnum):
    NO_POWER = "no_power"
    GRID_OUTAGE = "grid_outage"
    INACTIVITY = "inactivity"
    HIGH_LOAD = "high_load"
    DATA_GAP = "data_gap"
    CONSUMPTION_SHIFT = "consumption_shift"
    PAYMENT_RISK = "payment_risk"
    PREPAID_CUTOFF = "prepaid_cutoff"
    VOLTAGE = "voltage"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


def _member(enum, value):
    """enum(value), by the value's lookup first (an enum call costs more than the rest of
    making a finding's fields; a replay makes tens of thousands)."""
    try:
        return enum._value2member_map_[value]
    except (KeyError, TypeError):
        return enum(value)


@functools.lru_cache(maxsize=4096, typed=True)
def _iso_utc(t: datetime) -> str:
    # Kept: a burst of findings names the same few instants tens of thousands of times.
    return t.astimezone(UTC).isoformat()


def finding_id(kind: Kind, subject: str, started_at: datetime) -> str:
    """The id of a finding: the same kind, subject and start is the same finding."""
    key = f"{kind}|{subject}|{_iso_utc(started_at)}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


# json.dumps(..., ensure_ascii=False)'s encoder, made once (dumps makes one per call).
_JSON = json.JSONEncoder(ensure_ascii=False)
_text = json.encoder.encode_basestring  # a JSON string, as that encoder writes one

_WORDED = frozenset({"reason_en", "reason_zh", "evidence"})

SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True)
class Finding:
    """One finding, raised (event="raised") or closed (event="resolved").

    household_id is set for findings about one home; a grid_outage names its
    transformer_area and the households it covers instead. Times are timezone-aware UTC.
    detected_at is the end of the latest interval the engine had seen when it decided: nothing
    after that instant influenced the finding.
    """

    kind: Kind
    severity: Severity
    started_at: datetime
    detected_at: datetime
    reason_en: str
    reason_zh: str
    household_id: str | None = None
    transformer_area: str | None = None
    households: tuple[str, ...] = ()
    evidence: dict = field(default_factory=dict)
    event: str = "raised"
    finding_id: str = ""

    def __post_init__(self):
        object.__setattr__(self, "kind", _member(Kind, self.kind))
        object.__setattr__(self, "severity", _member(Severity, self.severity))
        if self.event not in ("raised", "resolved"):
            raise ValueError(f"finding event must be 'raised' or 'resolved', not {self.event!r}")
        for name in ("started_at", "detected_at"):
            value = getattr(self, name)
            if value.tzinfo is None:
                raise ValueError(f"finding {name} must be timezone-aware")
        if self.kind == Kind.GRID_OUTAGE and not self.transformer_area:
            raise ValueError("a grid_outage finding names its transformer_area")
        if self.kind != Kind.GRID_OUTAGE and not self.household_id:
            raise ValueError(f"a {self.kind} finding names its household_id")
        if not self.finding_id:
            subject = self.household_id or f"ta:{self.transformer_area}"
            object.__setattr__(self, "finding_id", finding_id(self.kind, subject, self.started_at))

    @classmethod
    def about_home(
        cls,
        kind: Kind | str,
        severity: Severity | str,
        started_at: datetime,
        detected_at: datetime,
        reason_en: str,
        reason_zh: str,
        household_id: str,
        evidence: dict,
        event: str,
    ) -> Finding:
        """A home's finding from the engine, whose fields are right by construction (UTC-aware
        times, a household_id, event raised or resolved): made without __init__'s checks,
        which cost more than the rest of it when a step raises tens of thousands (a warm-up's
        first step at a million homes). The same fields and finding_id as Finding(...)."""
        f = cls.worded_later(kind, severity, started_at, detected_at, household_id, None, event)
        f.__dict__.update(reason_en=reason_en, reason_zh=reason_zh, evidence=evidence)
        return f

    @classmethod
    def worded_later(
        cls,
        kind: Kind | str,
        severity: Severity | str,
        started_at: datetime,
        detected_at: datetime,
        household_id: str,
        words: Callable[[], tuple[str, str, dict]] | None,
        event: str,
    ) -> Finding:
        """As about_home, with reason_en, reason_zh and evidence made by `words()` when one of
        them is first read. Most of a burst of tens of thousands of findings (a million homes)
        is about homes nobody is enrolled for, whose wording nobody reads: the alerts keep
        only what names those findings. `words` must rest only on values it holds, not on
        state that changes after the finding is made."""
        kind, severity = _member(Kind, kind), _member(Severity, severity)
        f = object.__new__(cls)
        f.__dict__.update(
            kind=kind,
            severity=severity,
            started_at=started_at,
            detected_at=detected_at,
            household_id=household_id,
            transformer_area=None,
            households=(),
            event=event,
            finding_id=finding_id(kind, household_id, started_at),
        )
        if words is not None:
            f.__dict__["_words"] = words
        return f

    def __getattr__(self, name):
        # Reached only for an attribute not in __dict__: the wording of a finding made by
        # worded_later, made now, once.
        words = self.__dict__.get("_words")
        if words is None or name not in _WORDED:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        en, zh, evidence = words()
        d = self.__dict__
        d.update(reason_en=en, reason_zh=zh, evidence=evidence)
        del d["_words"]
        return d[name]

    def __getstate__(self):
        # Pickled (Spark, multiprocessing) with its wording, never with the function making it.
        if "_words" in self.__dict__:
            self.__getattr__("evidence")
        return self.__dict__

    @property
    def subject(self) -> str:
        return self.household_id or f"ta:{self.transformer_area}"

    def brief(self) -> dict:
        """to_dict's fields that name the finding (kind, severity, start, detection, home,
        event, finding_id), without making a wording left for later."""
        return {
            "kind": str(self.kind),
            "severity": str(self.severity),
            "started_at": _iso_utc(self.started_at),
            "detected_at": _iso_utc(self.detected_at),
            "household_id": self.household_id,
            "event": self.event,
            "finding_id": self.finding_id,
        }

    def to_dict(self) -> dict:
        # Field by field, not dataclasses.asdict: its deep copy of every evidence value was
        # most of the time a replay spent writing its findings. Evidence holds plain values
        # (Engine.finding makes them so); the dict is copied, its values are shared.
        return {
            "kind": str(self.kind),
            "severity": str(self.severity),
            "started_at": _iso_utc(self.started_at),
            "detected_at": _iso_utc(self.detected_at),
            "reason_en": self.reason_en,
            "reason_zh": self.reason_zh,
            "household_id": self.household_id,
            "transformer_area": self.transformer_area,
            "households": list(self.households),
            "evidence": dict(self.evidence),
            "event": self.event,
            "finding_id": self.finding_id,
        }

    def to_json(self) -> str:
        """json.dumps(self.to_dict(), ensure_ascii=False), character for character, written
        field by field: a replay writes tens of thousands of findings, and the fields other
        than the texts and the evidence need no escaping (names of kinds, ISO times, a hex
        id), so only those go through the encoder."""
        ta, hh = self.transformer_area, self.households
        return (
            f'{{"kind": "{self.kind}", "severity": "{self.severity}", '
            f'"started_at": "{_iso_utc(self.started_at)}", '
            f'"detected_at": "{_iso_utc(self.detected_at)}", '
            f'"reason_en": {_text(self.reason_en)}, "reason_zh": {_text(self.reason_zh)}, '
            f'"household_id": {"null" if self.household_id is None else _text(self.household_id)}, '
            f'"transformer_area": {"null" if ta is None else _text(ta)}, '
            f'"households": {_JSON.encode(list(hh)) if hh else "[]"}, '
            f'"evidence": {_JSON.encode(self.evidence)}, '
            f'"event": "{self.event}", "finding_id": "{self.finding_id}"}}'
        )

    @classmethod
    def from_dict(cls, d: dict) -> Finding:
        """The inverse of to_dict; times may also come as datetimes (from a Parquet table)."""
        d = dict(d)
        for k in ("started_at", "detected_at"):
            if isinstance(d[k], str):
                d[k] = datetime.fromisoformat(d[k])
        d["households"] = tuple(d.get("households") or ())
        return cls(**d)
