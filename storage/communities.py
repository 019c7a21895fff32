"""Communities, who is in them, and the one-person Telegram links made to join them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring, rowcount
from storage.models import Community, CommunityMember, GroupInviteLink

JOINED, LEFT = "joined", "left"

_memberships: Table = CommunityMember.__table__  # type: ignore[assignment]
_INSERT_MEMBERSHIP = insert_ignoring(
    _memberships,
    ("community_id", "member_id", "status", "via", "joined_at"),
    ("community_id", "member_id"),
    "id",
)
FIELDS = ("names", "tag", "min_tier", "telegram_chat_id", "wechat_qr", "description", "active")


async def by_slug(
    session: AsyncSession, slug: str, *, active_only: bool = True
) -> Community | None:
    stmt = select(Community).where(Community.slug == slug.lower())
    if active_only:
        stmt = stmt.where(Community.active.is_(True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_telegram_chat(session: AsyncSession, chat_id: int) -> Community | None:
    stmt = select(Community).where(Community.telegram_chat_id == chat_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def listing(session: AsyncSession, *, active_only: bool = True) -> list[Community]:
    stmt = select(Community).order_by(Community.slug)
    if active_only:
        stmt = stmt.where(Community.active.is_(True))
    return list((await session.execute(stmt)).scalars())


async def upsert(
    session: AsyncSession, slug: str, values: dict[str, Any], now: datetime
) -> tuple[Community, bool]:
    """Create the community or change the given fields of it; True when created."""
    found = await by_slug(session, slug, active_only=False)
    if found is None:
        found = Community(
            slug=slug.lower(),
            names={},
            tag="",
            min_tier="bronze",
            description="",
            active=True,
            created_at=now,
        )
        session.add(found)
        created = True
    else:
        created = False
    for name in FIELDS:
        if name in values:
            setattr(found, name, values[name])
    await session.flush()
    return found, created


async def joined_ids(session: AsyncSession, member_id: int) -> set[int]:
    stmt = select(CommunityMember.community_id).where(
        CommunityMember.member_id == member_id, CommunityMember.status == JOINED
    )
    return set((await session.execute(stmt)).scalars())


async def join(
    session: AsyncSession, community_id: int, member_id: int, via: str, now: datetime
) -> bool:
    """Record the member as in the community; False when they already were."""
    params = {
        "community_id": community_id,
        "member_id": member_id,
        "status": JOINED,
        "via": via,
        "joined_at": now,
    }
    if (await session.execute(_INSERT_MEMBERSHIP, params)).scalar_one_or_none() is not None:
        return True
    rejoined = await session.execute(
        update(CommunityMember)
        .where(
            CommunityMember.community_id == community_id,
            CommunityMember.member_id == member_id,
            CommunityMember.status == LEFT,
        )
        .values(status=JOINED, via=via, joined_at=now, left_at=None)
    )
    return rowcount(rejoined) == 1


async def leave(session: AsyncSession, community_id: int, member_id: int, now: datetime) -> bool:
    """Record the member as gone; False when they were not in it."""
    moved = await session.execute(
        update(CommunityMember)
        .where(
            CommunityMember.community_id == community_id,
            CommunityMember.member_id == member_id,
            CommunityMember.status == JOINED,
        )
        .values(status=LEFT, left_at=now)
    )
    return rowcount(moved) == 1


async def member_count(session: AsyncSession, community_id: int) -> int:
    stmt = select(func.count()).where(
        CommunityMember.community_id == community_id, CommunityMember.status == JOINED
    )
    return int((await session.execute(stmt)).scalar_one())


async def member_counts(session: AsyncSession) -> dict[int, int]:
    """Joined members of every community with any, in one query (for lists)."""
    stmt = (
        select(CommunityMember.community_id, func.count())
        .where(CommunityMember.status == JOINED)
        .group_by(CommunityMember.community_id)
    )
    return {community_id: int(n) for community_id, n in (await session.execute(stmt)).all()}


async def save_link(
    session: AsyncSession,
    link: str,
    community_id: int,
    member_id: int,
    now: datetime,
    expires_at: datetime,
) -> None:
    session.add(
        GroupInviteLink(
            link=link,
            community_id=community_id,
            member_id=member_id,
            created_at=now,
            expires_at=expires_at,
            revoked=False,
        )
    )
    await session.flush()


async def link_owner(session: AsyncSession, link: str) -> GroupInviteLink | None:
    return await session.get(GroupInviteLink, link)


async def mark_revoked(session: AsyncSession, link: str) -> None:
    await session.execute(
        update(GroupInviteLink).where(GroupInviteLink.link == link).values(revoked=True)
    )


async def merge(session: AsyncSession, survivor_id: int, loser_id: int) -> None:
    """The loser's memberships and links become the survivor's (one row per community)."""
    theirs = set(
        (
            await session.execute(
                select(CommunityMember.community_id).where(CommunityMember.member_id == survivor_id)
            )
        ).scalars()
    )
    if theirs:
        # The survivor's row wins; a loser's "joined" turns a survivor's "left" into joined.
        joined_by_loser = set(
            (
                await session.execute(
                    select(CommunityMember.community_id).where(
                        CommunityMember.member_id == loser_id,
                        CommunityMember.status == JOINED,
                        CommunityMember.community_id.in_(theirs),
                    )
                )
            ).scalars()
        )
        if joined_by_loser:
            await session.execute(
                update(CommunityMember)
                .where(
                    CommunityMember.member_id == survivor_id,
                    CommunityMember.community_id.in_(joined_by_loser),
                )
                .values(status=JOINED, left_at=None)
            )
        await session.execute(
            delete(CommunityMember).where(
                CommunityMember.member_id == loser_id, CommunityMember.community_id.in_(theirs)
            )
        )
    await session.execute(
        update(CommunityMember)
        .where(CommunityMember.member_id == loser_id)
        .values(member_id=survivor_id)
    )
    await session.execute(
        update(GroupInviteLink)
        .where(GroupInviteLink.member_id == loser_id)
        .values(member_id=survivor_id)
    )
