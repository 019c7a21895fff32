"""Who may do what: admin and staff everywhere, moderator of one community."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring, rowcount
from storage.models import Role

ADMIN, STAFF, MODERATOR = "admin", "staff", "moderator"
ROLES = (ADMIN, STAFF, MODERATOR)
EVERYWHERE = 0

_roles: Table = Role.__table__  # type: ignore[assignment]
_GRANT = insert_ignoring(
    _roles,
    ("member_id", "role", "community_id", "granted_at"),
    ("member_id", "role", "community_id"),
    "id",
)


async def grant(
    session: AsyncSession, member_id: int, role: str, community_id: int, now: datetime
) -> bool:
    """Give a role; False when the member had it already."""
    params = {
        "member_id": member_id,
        "role": role,
        "community_id": community_id,
        "granted_at": now,
    }
    return (await session.execute(_GRANT, params)).scalar_one_or_none() is not None


async def revoke(session: AsyncSession, member_id: int, role: str, community_id: int) -> bool:
    gone = await session.execute(
        delete(Role).where(
            Role.member_id == member_id, Role.role == role, Role.community_id == community_id
        )
    )
    return rowcount(gone) > 0


async def of_member(session: AsyncSession, member_id: int) -> list[Role]:
    stmt = select(Role).where(Role.member_id == member_id).order_by(Role.role, Role.community_id)
    return list((await session.execute(stmt)).scalars())


async def listing(session: AsyncSession) -> list[Role]:
    stmt = select(Role).order_by(Role.member_id, Role.role, Role.community_id)
    return list((await session.execute(stmt)).scalars())


async def has(session: AsyncSession, member_id: int, role: str, community_id: int = 0) -> bool:
    """True for the role in that community, or everywhere; an admin may do anything."""
    stmt = select(Role.id).where(
        Role.member_id == member_id,
        (Role.role == role) | (Role.role == ADMIN),
        Role.community_id.in_({community_id, EVERYWHERE}),
    )
    return (await session.execute(stmt.limit(1))).first() is not None


async def has_anywhere(session: AsyncSession, member_id: int, role: str) -> bool:
    """True for the role in any community (or everywhere), or for an admin."""
    stmt = select(Role.id).where(
        Role.member_id == member_id, (Role.role == role) | (Role.role == ADMIN)
    )
    return (await session.execute(stmt.limit(1))).first() is not None


async def merge(session: AsyncSession, survivor_id: int, loser_id: int) -> None:
    """The loser's roles become the survivor's, without duplicating one they both hold."""
    held = {
        (r.role, r.community_id)
        for r in (await session.execute(select(Role).where(Role.member_id == survivor_id)))
        .scalars()
        .all()
    }
    for role in (await session.execute(select(Role).where(Role.member_id == loser_id))).scalars():
        if (role.role, role.community_id) in held:
            await session.execute(delete(Role).where(Role.id == role.id))
    await session.execute(
        update(Role).where(Role.member_id == loser_id).values(member_id=survivor_id)
    )
