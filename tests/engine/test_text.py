"""The engine's bilingual wording of times (lianxin.engine.text)."""

from datetime import datetime
from zoneinfo import ZoneInfo

from lianxin.engine.text import window

TZ = ZoneInfo("Asia/Shanghai")


def _s(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp())


def test_a_window_of_most_of_a_day_is_not_said_as_two_clock_times():
    # The inactivity reason's comparison window, 23.5 h long: "between 13:15 and 12:45" read
    # as half an hour backwards.
    en, zh = window(_s("2026-03-01T13:15"), _s("2026-03-02T12:45"), TZ)
    assert (en, zh) == ("in the day up to 12:45", "在截至12:45的一天内")
    assert "13:15" not in en + zh


def test_a_window_of_a_few_hours_keeps_its_two_clock_times():
    assert window(_s("2026-03-01T06:10"), _s("2026-03-01T09:00"), TZ) == (
        "between 06:10 and 09:00",
        "在06:10至09:00之间",
    )
    # Across midnight, as the golden findings have it.
    assert window(_s("2026-03-01T23:00"), _s("2026-03-02T09:00"), TZ)[0] == (
        "between 23:00 and 09:00"
    )
