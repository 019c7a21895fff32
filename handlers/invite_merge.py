"""Linking two accounts settles their invites: nobody invites themself, nobody is attributed
twice, and what a voided invite paid is taken back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Services
from handlers.invite_rewards import reward_key, welcome_key
from handlers.tiers import apply_growth
from storage import invites, ledger
from storage.models import Invite, LedgerEntry, Member


async def after_merge(
    session: AsyncSession, services: Services, survivor_id: int, loser_id: int, now: datetime
) -> None:
    """Linking two members settles their invites (the merge holds both members locked; the
    invite rows are locked here, so no review decision lands in between):
    - one person cannot have invited themself: an invite between the halves is void;
    - one person is attributed once: if both halves were invited, the survivor's stands;
    - the loser's invite moves to the survivor only if the survivor could have been invited
      by that code itself (new within the window, not older than the inviter).
    What a voided invite paid is taken back from whoever holds it."""

    def holder(member_id: int) -> int:
        return survivor_id if member_id == loser_id else member_id

    for invite in await invites.between(session, survivor_id, loser_id):
        await _void(session, services, invite, holder, now)
    theirs = await invites.of_invitee(session, survivor_id, lock=True)
    mine = await invites.of_invitee(session, loser_id, lock=True)
    if mine is not None and mine.status != invites.VOID:
        if theirs is None and await _could_have_been_invited(session, services, mine, survivor_id):
            await invites.move_invitee(session, loser_id, survivor_id)
        else:
            await _void(session, services, mine, holder, now)
    await invites.move_inviter(session, loser_id, survivor_id)


async def _could_have_been_invited(
    session: AsyncSession, services: Services, invite: Invite, member_id: int
) -> bool:
    member = await session.get(Member, member_id)
    inviter = await session.get(Member, invite.inviter_id)
    if member is None or inviter is None:
        return False
    window = timedelta(days=services.rules.invites.attribution_days)
    return member.created_at >= invite.created_at - window and (
        inviter.created_at <= member.created_at
    )


async def _void(
    session: AsyncSession,
    services: Services,
    invite: Invite,
    holder: Callable[[int], int],
    now: datetime,
) -> None:
    """Mark an invite void and reverse what it paid, from the members who hold it now."""
    if invite.status == invites.VOID:
        return
    for key in (welcome_key(invite.id), reward_key(invite.id)):
        paid = (
            await session.execute(
                select(LedgerEntry.member_id, LedgerEntry.amount).where(
                    LedgerEntry.idempotency_key == key
                )
            )
        ).first()
        if paid is not None:
            await ledger.reverse(
                session,
                holder(paid.member_id),
                paid.amount,
                "invite-void",
                f"void:{key}",
                now,
                lot_key=key,
            )
    if invite.status == invites.REWARDED:
        growth = services.rules.growth.per_invite
        await apply_growth(session, services.rules, holder(invite.inviter_id), -growth)
    await invites.set_status(session, invite.id, invites.VOID, now)
