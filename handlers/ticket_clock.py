"""The complaint clock: a deadline N hours after a moment, counting only business hours
when the rules set them (`complaints.business_hours`, `complaints.business_days`), else
every hour of every day."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.settings import ComplaintRules

_MAX_DAYS = 3660  # a deadline never runs further than this (a rules file with no open day)


def _window(rules: ComplaintRules) -> tuple[time, time] | None:
    if not rules.business_hours:
        return None
    opens, closes = rules.business_hours.split("-")
    return time.fromisoformat(opens), time.fromisoformat(closes)


def add_hours(start: datetime, hours: float, rules: ComplaintRules, tz: ZoneInfo) -> datetime:
    """The moment `hours` of the clock have run from `start`."""
    window = _window(rules)
    if window is None:
        return start + timedelta(hours=hours)
    left = timedelta(hours=hours)
    local = start.astimezone(tz)
    day = local.date()
    for _ in range(_MAX_DAYS):
        if day.isoweekday() in rules.business_days:
            opens = datetime.combine(day, window[0], tz)
            closes = datetime.combine(day, window[1], tz)
            begin = max(opens, local)
            if begin < closes:
                if begin + left <= closes:
                    return begin + left
                left -= closes - begin
        day += timedelta(days=1)
    return start + timedelta(hours=hours)


def hours_between(start: datetime, end: datetime, rules: ComplaintRules, tz: ZoneInfo) -> float:
    """How much of the clock runs from `start` to `end` (0 if `end` is not later)."""
    window = _window(rules)
    if end <= start:
        return 0.0
    if window is None:
        return (end - start).total_seconds() / 3600
    total = timedelta(0)
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    day = local_start.date()
    while day <= local_end.date():
        if day.isoweekday() in rules.business_days:
            opens = max(datetime.combine(day, window[0], tz), local_start)
            closes = min(datetime.combine(day, window[1], tz), local_end)
            if opens < closes:
                total += closes - opens
        day += timedelta(days=1)
    return total.total_seconds() / 3600
