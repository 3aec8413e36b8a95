"""The missed-payment side of payment_risk: a home that pays regularly and then stops is flagged
once it is clearly overdue (missed_payment_factor × its usual gap), not before; the next payment
clears it; a home with too few payments to know its habit is never flagged."""

from datetime import timedelta

import polars as pl
import pytest

from lianxin.engine.config import EngineConfig
from lianxin.engine.replay import replay
from tests.engine.curves import at, home, local, raised

DAYS = 40


@pytest.fixture(scope="module")
def town():
    return pl.concat([home(f"h{i}", DAYS, seed=i) for i in range(3)])


def pays(hid, days, amount=50.0):
    return pl.DataFrame({"household_id": hid, "ts": [at(d, 9) for d in days], "amount": amount})


def missed(findings, hid):
    return [f for f in raised(findings, "payment_risk", hid) if "usual_gap_days" in f.evidence]


def test_a_home_that_stops_paying_is_flagged_once_clearly_overdue(town):
    cfg = EngineConfig()
    # h0 pays weekly, then stops after day 21; h1 pays weekly throughout; h2 paid twice only.
    payments = pl.concat(
        [pays("h0", [0, 7, 14, 21]), pays("h1", range(0, DAYS, 7)), pays("h2", [0, 7])]
    )
    findings = replay(town, payments=payments)
    (f,) = missed(findings, "h0")
    assert f.severity == "info"
    assert f.evidence["usual_gap_days"] == pytest.approx(7)
    overdue = at(21, 9) + timedelta(days=7 * cfg.missed_payment_factor)
    assert local(f.detected_at) >= overdue
    assert local(f.detected_at) < overdue + timedelta(days=1)  # checked once a day
    assert "usually pays every" in f.reason_en and "缴费" in f.reason_zh
    assert missed(findings, "h1") == [] and missed(findings, "h2") == []


def test_the_next_payment_clears_a_missed_payment(town):
    payments = pl.concat([pays("h0", [0, 7, 14, 21, 36])])
    findings = replay(town, payments=payments)
    (f,) = missed(findings, "h0")
    closed = [x for x in findings if x.event == "resolved" and x.finding_id == f.finding_id]
    assert len(closed) == 1 and local(closed[0].detected_at) >= at(36, 9)
