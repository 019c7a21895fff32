"""`reminders`: points about to expire are announced (rules: points.reminder_days ahead).

Once per member and first expiry day (the dedupe key), and at most once per
nudges.reminder_gap_days, so a member who checks in daily is not reminded daily.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from bot.jobs.env import JobEnv
from bot.jobs.pushes import push_to_member
from storage import nudges

KIND = "reminder"


async def run(env: JobEnv) -> int:
    """Queue a reminder for each member with points expiring soon; returns how many."""
    services = env.services
    rules, now = services.rules, services.clock.now()
    async with services.db.reader() as session:
        due = await nudges.expiring_soon(
            session,
            now,
            rules.points.reminder_days,
            kind=KIND,
            gap=timedelta(days=rules.nudges.reminder_gap_days),
        )
    queued = 0
    for expiring in due:
        day = expiring.first_expiry.astimezone(services.settings.tz).date()
        render = partial(env.texts.reminder, points=expiring.points, expires_on=day)
        key = f"{KIND}:{expiring.member_id}:{day.isoformat()}"
        async with services.db.transaction() as session:
            pushed = await push_to_member(
                session, services, expiring.member_id, KIND, key, render, channels=env.channels
            )
        queued += pushed is not None
    return queued
