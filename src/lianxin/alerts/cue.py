"""Which new alerts make the queue sound and flash: per severity, the kinds that do.

LIANXIN_CUE="critical:*;warning:inactivity,high_load" — `*` is every kind; a severity not
named stays silent. Read at start-up (no Django here), so a typo stops the server with its
name instead of silencing a cue.
"""

from lianxin.engine.findings import Kind, Severity
from lianxin.errors import LianxinError

# An empty home and a heater left on matter as much as a dark meter for someone living alone.
DEFAULT = "critical:*;warning:inactivity,high_load,no_power,prepaid_cutoff"


def parse(raw: str, name: str = "LIANXIN_CUE") -> dict[str, frozenset[str]]:
    kinds = {k.value for k in Kind}
    severities = {s.value for s in Severity}
    out: dict[str, frozenset[str]] = {}
    for part in (raw or "").split(";"):
        if not part.strip():
            continue
        severity, sep, listed = part.partition(":")
        severity = severity.strip()
        if not sep or severity not in severities:
            raise LianxinError(
                f"{name}: {part.strip()!r} is not severity:kinds "
                f"(severity one of {', '.join(sorted(severities))})"
            )
        chosen = {k.strip() for k in listed.split(",") if k.strip()}
        if "*" in chosen:
            chosen = kinds
        unknown = chosen - kinds
        if unknown:
            raise LianxinError(
                f"{name}: unknown kind {sorted(unknown)[0]!r} for {severity} "
                f"(kinds: {', '.join(sorted(kinds))})"
            )
        out[severity] = frozenset(chosen)
    return out


def cued(cue: dict[str, frozenset[str]], kind: str, severity: str) -> bool:
    return kind in cue.get(severity, ())
