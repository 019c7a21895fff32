"""The period the figures cover: the last `days` days up to `now` (included: what happened
at this very instant counts), and the one before it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Window:
    """`now` (aware), `today` (the local day of `now`, for day-keyed rows such as check-ins)."""

    now: datetime
    today: date
    days: int
    timezone: str

    @property
    def start(self) -> datetime:
        return self.now - timedelta(days=self.days)

    @property
    def previous_start(self) -> datetime:
        """Start of the period just before this one (churn compares the two)."""
        return self.now - timedelta(days=2 * self.days)

    @property
    def first_day(self) -> date:
        return self.today - timedelta(days=self.days - 1)

    def day_list(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(self.days)]

    def json(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "from": self.start.isoformat(),
            "to": self.now.isoformat(),
            "first_day": self.first_day.isoformat(),
            "last_day": self.today.isoformat(),
            "timezone": self.timezone,
        }


def rate(part: int, whole: int) -> float | None:
    """A share rounded to 4 places; None when there is nothing to share."""
    return round(part / whole, 4) if whole else None
