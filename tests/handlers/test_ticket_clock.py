"""The complaint clock with and without business hours."""

from __future__ import annotations

from datetime import datetime

from bot.settings import ComplaintRules
from handlers.ticket_clock import add_hours, hours_between
from tests.conftest import SHANGHAI

ALWAYS = ComplaintRules()
OFFICE = ComplaintRules(business_hours="09:00-18:00", business_days=(1, 2, 3, 4, 5))
TUESDAY_10 = datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI)
FRIDAY_17 = datetime(2026, 3, 13, 17, 0, tzinfo=SHANGHAI)


def test_without_business_hours_every_hour_counts():
    assert add_hours(TUESDAY_10, 1.5, ALWAYS, SHANGHAI) == datetime(
        2026, 3, 10, 11, 30, tzinfo=SHANGHAI
    )


def test_business_hours_skip_nights():
    # Tuesday 8 h + Wednesday 9 h + Thursday 7 h.
    assert add_hours(TUESDAY_10, 24, OFFICE, SHANGHAI) == datetime(
        2026, 3, 12, 16, 0, tzinfo=SHANGHAI
    )


def test_business_days_skip_weekends():
    assert add_hours(FRIDAY_17, 2, OFFICE, SHANGHAI) == datetime(
        2026, 3, 16, 10, 0, tzinfo=SHANGHAI
    )


def test_filed_at_night_starts_at_the_next_opening():
    saturday_night = datetime(2026, 3, 14, 23, 0, tzinfo=SHANGHAI)
    assert add_hours(saturday_night, 1, OFFICE, SHANGHAI) == datetime(
        2026, 3, 16, 10, 0, tzinfo=SHANGHAI
    )


def test_hours_between_counts_the_same_clock():
    end = add_hours(FRIDAY_17, 11, OFFICE, SHANGHAI)
    assert hours_between(FRIDAY_17, end, OFFICE, SHANGHAI) == 11
    assert hours_between(end, FRIDAY_17, OFFICE, SHANGHAI) == 0
