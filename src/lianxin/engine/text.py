"""Bilingual wording helpers: times and durations an operator can read aloud."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

# Instants are said again and again within a step (a burst of findings about homes quiet
# since the same half hour): the wordings of instants are kept, not worked out each time.
_KEEP = 8192


def utc(ts_s: int | float) -> datetime:
    return _utc(int(ts_s))


@functools.lru_cache(maxsize=_KEEP)
def _utc(ts_s: int) -> datetime:
    return datetime.fromtimestamp(ts_s, UTC)


def when(ts_s: int, now_s: int, tz: ZoneInfo) -> tuple[str, str]:
    """'21:40 yesterday' / '昨天21:40', relative to the engine's clock in local time."""
    return _when(int(ts_s), int(now_s), tz)


@functools.lru_cache(maxsize=_KEEP)
def _when(ts_s: int, now_s: int, tz: ZoneInfo) -> tuple[str, str]:
    t = datetime.fromtimestamp(ts_s, tz)
    today = datetime.fromtimestamp(now_s, tz).date()
    hm = f"{t.hour:02d}:{t.minute:02d}"  # by hand, not strftime: replay formats many
    days = (today - t.date()).days
    if days == 0:
        return f"{hm} today", f"今天{hm}"
    if days == 1:
        return f"{hm} yesterday", f"昨天{hm}"
    return f"{hm} on {t.month:02d}-{t.day:02d}", f"{t.month}月{t.day}日{hm}"


def hours(h: float) -> tuple[str, str]:
    if h < 1:
        m = max(1, round(h * 60))
        return f"{m} min", f"{m}分钟"
    if h < 48:
        v = f"{h:.1f}".rstrip("0").rstrip(".")
        return f"{v} h", f"{v}小时"
    v = f"{h / 24:.1f}".rstrip("0").rstrip(".")
    return f"{v} days", f"{v}天"


def clock(ts_s: int, tz: ZoneInfo) -> str:
    return _clock(int(ts_s), tz)


@functools.lru_cache(maxsize=_KEEP)
def _clock(ts_s: int, tz: ZoneInfo) -> str:
    t = datetime.fromtimestamp(ts_s, tz)
    return f"{t.hour:02d}:{t.minute:02d}"


def window(start_s: int, end_s: int, tz: ZoneInfo) -> tuple[str, str]:
    """A stretch of the day said the way a person would: 'in the day up to 12:45' for a window
    of most of a day (not 'between 13:15 and 12:45', which reads as half an hour), else
    'between 06:10 and 09:00'."""
    a, b = clock(start_s, tz), clock(end_s, tz)
    if end_s - start_s >= 20 * 3600:
        return f"in the day up to {b}", f"在截至{b}的一天内"
    return f"between {a} and {b}", f"在{a}至{b}之间"


def next_local_hour(ts_s: int, tz: ZoneInfo) -> int:
    """The instant the local hour containing ts_s ends (DST-safe: hours are absolute)."""
    t = datetime.fromtimestamp(int(ts_s), tz)
    start = t.replace(minute=0, second=0, microsecond=0)
    return int((start.astimezone(UTC) + timedelta(hours=1)).timestamp())
