"""What the apps tell us about one account: unfollowed, blocked, refused a delivery."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Identity, Member


async def mark_unreachable(
    session: AsyncSession,
    channel: str,
    external_id: str,
    now: datetime,
    reason: str,
    *,
    erase_personal: bool = False,
) -> int | None:
    """Flag the account as gone (unfollowed/blocked); returns its member id, if known.

    WeChat asks that a follower's personal data go when they leave (`erase_personal`):
    unless the member is still reachable in another app, the display name and birthday are
    erased; the ledger (and the openid that keys it) stays for the points owed.
    """
    result = await session.execute(
        update(Identity)
        .where(Identity.channel == channel, Identity.external_id == external_id)
        .values(unreachable=True, send_error=reason[:64], send_error_at=now)
        .returning(Identity.member_id)
    )
    member_id = result.scalar_one_or_none()
    if member_id is None or not erase_personal:
        return member_id
    still_reachable = (
        await session.execute(
            select(Identity.id).where(
                Identity.member_id == member_id, Identity.unreachable.is_(False)
            )
        )
    ).first()
    if still_reachable is None:
        await session.execute(
            update(Member).where(Member.id == member_id).values(display_name=None, birthday=None)
        )
    return member_id


async def mark_reachable(session: AsyncSession, channel: str, external_id: str) -> None:
    """They came back (followed again, wrote again): deliveries may be tried again."""
    await session.execute(
        update(Identity)
        .where(
            Identity.channel == channel,
            Identity.external_id == external_id,
            Identity.unreachable.is_(True),
        )
        .values(unreachable=False, send_error=None, send_error_at=None)
    )


async def record_send_error(
    session: AsyncSession, channel: str, external_id: str, now: datetime, reason: str
) -> None:
    """A refusal that is not final (e.g. outside WeChat's reply window): kept, not retried."""
    await session.execute(
        update(Identity)
        .where(Identity.channel == channel, Identity.external_id == external_id)
        .values(send_error=reason[:64], send_error_at=now)
    )


async def get(session: AsyncSession, channel: str, external_id: str) -> Identity | None:
    stmt = select(Identity).where(Identity.channel == channel, Identity.external_id == external_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def private_chat_opened(
    session: AsyncSession, channel: str, external_id: str, now: datetime
) -> None:
    """The person wrote in a private chat: the bot may write there (kept from the first time)."""
    await session.execute(
        update(Identity)
        .where(
            Identity.channel == channel,
            Identity.external_id == external_id,
            Identity.private_chat_at.is_(None),
        )
        .values(private_chat_at=now)
    )
