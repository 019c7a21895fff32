"""Quiet hours: nudges and campaigns found due at night wait for the morning (local time)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def _at(hh_mm: str) -> time:
    hours, minutes = hh_mm.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, tz: ZoneInfo, start: str, end: str) -> datetime | None:
    """When the quiet hours around `now` end, or None when `now` is outside them.

    `start`/`end` are local "HH:MM"; start after end spans midnight (22:00-08:00), equal
    times mean no quiet hours at all.
    """
    begin, finish = _at(start), _at(end)
    if begin == finish:
        return None
    local = now.astimezone(tz)
    clock = local.time()
    if begin < finish:
        inside, day = begin <= clock < finish, local.date()
    else:
        inside = clock >= begin or clock < finish
        day = local.date() + timedelta(days=1) if clock >= begin else local.date()
    if not inside:
        return None
    return datetime.combine(day, finish, tzinfo=tz)
