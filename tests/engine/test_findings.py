"""A finding's dict (what replay files, alerts and Spark carry) holds every field and reads back."""

import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone

from lianxin.engine.findings import Finding


def test_a_finding_written_as_json_reads_back_equal_with_every_field():
    east8 = timezone(timedelta(hours=8))
    f = Finding(
        kind="grid_outage",
        severity="critical",
        started_at=datetime(2026, 3, 1, 8, 0, tzinfo=east8),
        detected_at=datetime(2026, 3, 1, 1, 30, tzinfo=UTC),
        reason_en="12 homes dark",
        reason_zh="12户停电",
        transformer_area="T-7",
        households=("h1", "h2"),
        evidence={"homes_dark": 12, "names": ["h1", "h2"]},
    )
    d = json.loads(json.dumps(f.to_dict(), ensure_ascii=False))
    assert set(d) == {x.name for x in fields(Finding)}
    assert d["started_at"] == "2026-03-01T00:00:00+00:00"
    assert d["households"] == ["h1", "h2"] and d["kind"] == "grid_outage"
    assert Finding.from_dict(d) == f
    # The dict is the caller's: changing it leaves the finding as it was.
    d2 = f.to_dict()
    d2["evidence"]["homes_dark"] = 0
    assert f.evidence["homes_dark"] == 12
