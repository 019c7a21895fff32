"""One-time codes that link an account in one app to the member behind another."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring
from storage.models import LinkCode

_INSERT = insert_ignoring(
    LinkCode.__table__,  # type: ignore[arg-type]
    ("code", "member_id", "channel", "expires_at"),
    ("code",),
    "code",
)


async def issue(
    session: AsyncSession, member_id: int, channel: str, now: datetime, minutes: int
) -> LinkCode:
    """A fresh 6-digit code for the member; their earlier codes stop working."""
    await session.execute(delete(LinkCode).where(LinkCode.member_id == member_id))
    await session.execute(delete(LinkCode).where(LinkCode.expires_at <= now))
    expires = now + timedelta(minutes=minutes)
    while True:
        code = f"{secrets.randbelow(1_000_000):06d}"
        values = {"code": code, "member_id": member_id, "channel": channel, "expires_at": expires}
        inserted = (await session.execute(_INSERT, values)).scalar_one_or_none()
        if inserted is not None:
            return LinkCode(code=code, member_id=member_id, channel=channel, expires_at=expires)


async def take(session: AsyncSession, code: str) -> LinkCode | None:
    """Consume a code: delete-returning, so two redeemers of one code cannot both succeed."""
    stmt = delete(LinkCode).where(LinkCode.code == code).returning(LinkCode)
    return (await session.execute(stmt)).scalar_one_or_none()


async def peek(session: AsyncSession, code: str) -> LinkCode | None:
    return (
        await session.execute(select(LinkCode).where(LinkCode.code == code))
    ).scalar_one_or_none()


async def any_waiting(session: AsyncSession, now: datetime) -> bool:
    """Whether any unexpired code exists: only then can a bare number be one (a guess while
    none waits could not succeed anyway, so treating it as just a number gives nothing away)."""
    found = await session.execute(select(LinkCode.code).where(LinkCode.expires_at > now).limit(1))
    return found.first() is not None
