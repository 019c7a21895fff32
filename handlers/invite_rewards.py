"""Invite rewards: the inviter's reward at the invitee's first check-in, held for a moderator's
review past the inviter's daily cap, and the inviter told after the commit.

The ledger keys of what an invite pays live here too (the welcome gift is paid at attribution,
in handlers/invites.py; a voided invite takes both back, in handlers/invite_merge.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import local_day
from bot.core.context import Services
from bot.core.i18n import N_, Translator
from bot.core.messages import Reply
from handlers.tiers import TierChange, apply_growth, upgrade_text
from storage import invites, ledger
from storage.models import Invite

log = logging.getLogger("memberbot.invites")


# Keyed by the invite, not the invitee: linking accounts moves an invite to another member id,
# and voiding it later must still find what it paid.
def welcome_key(invite_id: int) -> str:
    return f"invite-welcome:{invite_id}"


def reward_key(invite_id: int) -> str:
    return f"invite-reward:{invite_id}"


@dataclass(frozen=True)
class Settled:
    """An invite reward decided inside a transaction; told to the inviter after it commits."""

    invite_id: int
    inviter_id: int
    status: str
    points: int = 0
    balance: int = 0
    tier: TierChange | None = None
    by_order: bool = False  # settled by the invitee's first order (invites.reward_on)


async def lock_for_checkin(session: AsyncSession, invitee_id: int) -> Invite | None:
    """First thing in a check-in transaction: lock the member (MemberMerged if linking folded
    them into another meanwhile) and, if their invite waits for this first check-in, its
    inviter too, in id order (the order a merge locks members in)."""
    invite = await invites.of_invitee(session, invitee_id)
    if invite is None or invite.status != invites.WAITING:
        await ledger.lock_member(session, invitee_id)
        return None
    await invites.lock_pair(session, invitee_id, invite.inviter_id)
    return invite


async def reward_on_first_checkin(
    session: AsyncSession,
    services: Services,
    invitee_id: int,
    now: datetime,
    *,
    by_order: bool = False,
) -> Settled | None:
    """Called in the invitee's check-in transaction (after `waiting_invite` found one):
    settle their invite, at most once."""
    rules = services.rules
    day = local_day(now, services.settings.tz)
    invite = await invites.settle_first_checkin(
        session, invitee_id, day, rules.invites.daily_review_threshold, now
    )
    if invite is None:
        return None
    if invite.status == invites.REVIEW:
        log.info("invite reward held for review invite=%s inviter=%s", invite.id, invite.inviter_id)
        return Settled(invite.id, invite.inviter_id, invite.status, by_order=by_order)
    return replace(await _pay(session, services, invite, now), by_order=by_order)


async def _pay(session: AsyncSession, services: Services, invite: Invite, now: datetime) -> Settled:
    rules = services.rules
    points = rules.invites.inviter_points
    balance = 0
    if points:
        moved = await ledger.earn(
            session,
            invite.inviter_id,
            points,
            "invite-reward",
            reward_key(invite.id),
            now,
            expiry_days=rules.points.expiry_days,
        )
        balance = moved.balance
        services.metrics.points_issued.labels("invite").inc(points)
    change = await apply_growth(session, rules, invite.inviter_id, rules.growth.per_invite)
    return Settled(invite.id, invite.inviter_id, invites.REWARDED, points, balance, change)


# What the inviter is told, held for review or paid: at the invitee's first check-in, or at
# their first order (invites.reward_on = "first_order").
_BY_CHECKIN = (
    N_(
        "A friend you invited checked in for the first time. You have had many "
        "invite rewards today, so this one waits for a quick review."
    ),
    N_(
        "A friend you invited checked in for the first time: +{points} points and "
        "+{growth} growth for you. Balance: {balance}."
    ),
)
_BY_ORDER = (
    N_(
        "A friend you invited placed their first order. You have had many invite "
        "rewards today, so this one waits for a quick review."
    ),
    N_(
        "A friend you invited placed their first order: +{points} points and "
        "+{growth} growth for you. Balance: {balance}."
    ),
)


async def tell_inviter(session: AsyncSession, services: Services, settled: Settled | None) -> bool:
    """In the transaction that decided the reward: queue the inviter's push (the outbox sends
    it in their app and language once this commits). True when a push was queued: wake the
    sender after the commit."""
    if settled is None:
        return False
    growth = services.rules.growth.per_invite

    def render(t: Translator) -> Reply:
        if settled.status == invites.REJECTED:
            return Reply(t(N_("An invite reward of yours was not approved after review.")))
        texts = _BY_ORDER if settled.by_order else _BY_CHECKIN
        if settled.status == invites.REVIEW:
            return Reply(t(texts[0]))
        lines = [t(texts[1], points=settled.points, growth=growth, balance=settled.balance)]
        if settled.tier is not None and settled.tier.upgraded:
            lines.append(upgrade_text(t, services.rules, settled.tier.new))
        return Reply("\n".join(lines))

    key = f"invite:{settled.invite_id}:{settled.status}"
    queued = await services.pushes.to_member(
        session, settled.inviter_id, "invite-reward", key, render
    )
    return queued is not None


async def review(services: Services, invite_id: int, approve: bool) -> Settled | None:
    """A moderator's decision on a held reward; paid once however often it is approved."""
    now = services.clock.now()
    async with services.db.transaction() as session:
        invite = await invites.decide(session, invite_id, approve, now)
        if invite is None:
            return None
        by_order = services.rules.invites.reward_on == "first_order"
        settled = (
            replace(await _pay(session, services, invite, now), by_order=by_order)
            if approve
            else Settled(invite.id, invite.inviter_id, invites.REJECTED)
        )
        told = await tell_inviter(session, services, settled)
    if told:
        services.pushes.wake()
    return settled
