"""`birthdays`: a greeting on the member's birthday (local time), once a year.

Members born on 29 February are greeted on the 28th in other years. Found during quiet
hours, the greeting waits for their end, unless that would be another day: then the next
day's run greets the next day's members.
"""

from __future__ import annotations

from calendar import isleap
from datetime import date
from functools import partial

from bot.jobs.env import JobEnv
from bot.jobs.pushes import push_to_member
from bot.jobs.quiet import quiet_until
from storage import nudges

KIND = "birthday"


def birthdays_on(day: date) -> set[str]:
    """The "MM-DD" birthdays celebrated on `day`."""
    days = {day.strftime("%m-%d")}
    if (day.month, day.day) == (2, 28) and not isleap(day.year):
        days.add("02-29")
    return days


async def run(env: JobEnv) -> int:
    """Queue today's greetings; returns how many."""
    services = env.services
    now, tz, rules = services.clock.now(), services.settings.tz, services.rules
    today = now.astimezone(tz).date()
    morning = quiet_until(now, tz, rules.nudges.quiet_start, rules.nudges.quiet_end)
    if morning is not None and morning.astimezone(tz).date() != today:
        return 0
    async with services.db.reader() as session:
        born = await nudges.born_on(session, birthdays_on(today))
    render = partial(env.texts.birthday, multiplier=rules.checkin.birthday_multiplier)
    queued = 0
    for member_id in born:
        key = f"{KIND}:{member_id}:{today.year}"
        async with services.db.transaction() as session:
            pushed = await push_to_member(
                session, services, member_id, KIND, key, render, channels=env.channels
            )
        queued += pushed is not None
    return queued
