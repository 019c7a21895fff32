"""`tier-review`: once a year per member (nudges.tier_review_days after joining, then after
each review), the growth earned in that period must reach the held tier's threshold, else the
member moves down one tier and is told why. The lowest tier is never reviewed.

"Growth earned in the period" is the member's growth now minus the growth at the previous
review (0 at joining): refunds count against it, nothing is counted twice.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from bot.jobs.env import JobEnv
from bot.jobs.pushes import push_to_member
from storage import ledger, members, nudges
from storage.errors import MemberMerged

KIND = "tier-review"


async def run(env: JobEnv) -> int:
    """Review every member due; returns how many moved down."""
    services = env.services
    rules, now = services.rules, services.clock.now()
    period = timedelta(days=rules.nudges.tier_review_days)
    async with services.db.reader() as session:
        due = await nudges.due_for_review(session, now, period, skip_tier=rules.tiers[0].name)
    moved = 0
    for base in due:
        try:
            async with services.db.transaction() as session:
                moved += await _review(env, session, base)
        except MemberMerged:
            continue  # linked into another member meanwhile: that one is reviewed instead
    return moved


async def _review(env: JobEnv, session: AsyncSession, base: nudges.ReviewBase) -> int:
    """Review one member under their row lock; 1 when they moved down."""
    services = env.services
    rules, now = services.rules, services.clock.now()
    member = await ledger.lock_member(session, base.member_id)
    held = rules.tier(member.tier)
    rank = rules.tier_rank(held.name)
    earned = max(member.growth - base.growth_at, 0)
    after = rules.tiers[rank - 1] if rank > 0 and earned < held.threshold else held
    current = nudges.ReviewBase(base.member_id, held.name, base.since, base.growth_at)
    if not await nudges.record_review(session, current, now, member.growth, after.name):
        return 0  # another run reviewed this period already
    if after.name == held.name:
        return 0
    await members.set_tier(session, member.id, after.name)
    render = partial(
        env.texts.tier_down, old=held.name, new=after.name, earned=earned, needed=held.threshold
    )
    key = f"{KIND}:{member.id}:{base.since.isoformat()}"
    await push_to_member(session, services, member.id, KIND, key, render, channels=env.channels)
    return 1
