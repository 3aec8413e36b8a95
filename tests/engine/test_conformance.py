"""Every detector behind the shared interface: declared per-home arrays, a tick that returns
findings, state that survives a snapshot, no Django anywhere in the engine."""

import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from lianxin.engine.core import Engine
from lianxin.engine.detectors import DETECTORS
from lianxin.engine.findings import Kind
from tests.engine.curves import home


@pytest.mark.parametrize("det", DETECTORS, ids=lambda d: d.__name__.rsplit(".", 1)[-1])
def test_detector_interface(det):
    assert det.__doc__ and callable(det.tick)
    for name, (dtype, shape, _fill) in det.FIELDS.items():
        assert isinstance(name, str) and np.dtype(dtype) and isinstance(shape, tuple)
    eng = Engine()
    eng.register(pl.DataFrame({"household_id": ["a", "b"]}))
    for name in det.FIELDS:
        assert eng.a[name].shape[0] == 2
    restored = Engine.restore(eng.snapshot())
    for name in det.FIELDS:
        assert np.array_equal(restored.a[name], eng.a[name], equal_nan=True)


def test_state_arrays_have_their_declared_names_and_no_others():
    """eng.a.<name> for every declared field; a misspelt name fails when read and when written
    (a dictionary of arrays would have grown a new key and detected nothing)."""
    eng = Engine()
    eng.register(pl.DataFrame({"household_id": ["a", "b"]}))
    assert list(eng.a.keys()) == list(eng.spec)
    assert eng.a.quiet_since is eng.a["quiet_since"] and eng.g.outage_since.shape == (0,)
    with pytest.raises(AttributeError):
        eng.a.quiet_snice = np.zeros(2, np.int64)
    with pytest.raises(AttributeError):
        eng.a.quiet_snice  # noqa: B018
    with pytest.raises(AttributeError):
        eng.a["in_opn"] = np.zeros(2, np.int64)


def test_every_finding_kind_has_a_detector():
    from pathlib import Path

    text = " ".join(Path(d.__file__).read_text() for d in DETECTORS)
    for kind in Kind:
        assert f'"{kind.value}"' in text, kind


def test_the_engine_never_imports_django():
    code = (
        "import sys, polars as pl\n"
        "from lianxin.engine.replay import replay\n"
        "from lianxin.engine.baseline import usual_band\n"
        "import lianxin.engine.core\n"
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_history_report():
    eng = Engine()
    from lianxin.engine.replay import replay

    replay(home("a", 3), engine=eng)
    h = eng.history()
    assert h.columns == ["household_id", "days", "standby_kw", "personal_share"]
    assert h["days"][0] == 2 and 0 < h["personal_share"][0] < 1
