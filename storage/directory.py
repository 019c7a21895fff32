"""The operators' list of members: the newest first, each with their app accounts."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Identity, Member


async def newest(session: AsyncSession, limit: int = 50) -> list[tuple[Member, list[Identity]]]:
    """The `limit` newest members (linked-away accounts left out), two queries in all."""
    found = list(
        (
            await session.execute(
                select(Member)
                .where(Member.merged_into_id.is_(None))
                .order_by(Member.created_at.desc(), Member.id.desc())
                .limit(limit)
            )
        ).scalars()
    )
    accounts: dict[int, list[Identity]] = defaultdict(list)
    if found:
        rows = await session.execute(
            select(Identity)
            .where(Identity.member_id.in_([m.id for m in found]))
            .order_by(Identity.id)
        )
        for identity in rows.scalars():
            accounts[identity.member_id].append(identity)
    return [(member, accounts[member.id]) for member in found]
