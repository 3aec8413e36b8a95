"""The engine's per-row state arrays under their names: `eng.a.quiet_since`, `eng.g.outage_since`.

The names are declared once, in the field specs (core.BASE_FIELDS, routine.fields and each
detector's FIELDS: name -> dtype, trailing shape, fill). `fields_class` makes from those a class
with exactly those names as slots, so a misspelt name fails when it is read and when it is
written (a dictionary would quietly grow a new key on a write). Reading an attribute costs what a
dictionary lookup did. Code that walks every array (allocation, snapshots) indexes by the name
as a string; detectors use attributes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


class Fields:
    """Arrays by name, one attribute each; iterates its names in their declared order."""

    __slots__ = ()
    names: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> np.ndarray:
        return getattr(self, name)

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        setattr(self, name, value)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def keys(self) -> tuple[str, ...]:
        return self.names

    def values(self) -> list[np.ndarray]:
        return [getattr(self, k) for k in self.names]

    def items(self) -> list[tuple[str, np.ndarray]]:
        return [(k, getattr(self, k)) for k in self.names]


def fields_class(name: str, names: Iterable[str]) -> type[Fields]:
    """A Fields class whose only attributes are `names` (in this order)."""
    names = tuple(dict.fromkeys(names))
    return type(name, (Fields,), {"__slots__": names, "names": names})
