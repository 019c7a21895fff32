"""`dormant`: members quiet for nudges.dormant_days (no check-in, no purchase) get a reason to
come back (their balance, points about to expire, the streak they had), at most once per
nudges.dormant_every_days and never when muted (it is marketing)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from bot.jobs.env import JobEnv
from bot.jobs.pushes import Render, push_to_member
from storage import checkins, members, nudges

KIND = "dormant"


async def run(env: JobEnv) -> int:
    """Queue a wake-up for each member gone quiet; returns how many."""
    services = env.services
    rules, now = services.rules.nudges, services.clock.now()
    today = now.astimezone(services.settings.tz).date()
    every = timedelta(days=rules.dormant_every_days)
    async with services.db.reader() as session:
        quiet = await nudges.gone_quiet(
            session, now, today, rules.dormant_days, kind=KIND, every=every
        )
    queued = 0
    for member_id in quiet:
        async with services.db.transaction() as session:
            render = await _reasons(env, session, member_id)
            key = f"{KIND}:{member_id}:{today.isoformat()}"
            pushed = await push_to_member(
                session, services, member_id, KIND, key, render, channels=env.channels
            )
        queued += pushed is not None
    return queued


async def _reasons(env: JobEnv, session: AsyncSession, member_id: int) -> Render:
    """The member's reasons to come back, ready to render in their language."""
    services = env.services
    now = services.clock.now()
    member = await members.get(session, member_id)
    balance = member.points if member is not None else 0
    days = services.rules.points.reminder_days
    expiring, first = await nudges.expiring_of(session, member_id, now, days)
    last = await checkins.last(session, member_id)
    return partial(
        env.texts.dormant,
        balance=balance,
        expiring=expiring,
        expires_on=first.astimezone(services.settings.tz).date() if first else None,
        streak=last.streak if last is not None else 0,
    )
