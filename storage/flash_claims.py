"""Units won in flash sales: the till's look-up and use, what a member holds, the counts the
Redis fast path is rebuilt from, and linked accounts folded together.

The claim rows themselves are written only by the engine, `storage.flashsales.claim`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import rowcount
from storage.flashsales import CLAIM_CODE_LENGTH, normalise_code
from storage.models import FlashClaim, FlashSale


async def claims_of_member(session: AsyncSession, sale_id: int, member_id: int) -> int:
    stmt = select(func.count()).where(
        FlashClaim.sale_id == sale_id, FlashClaim.member_id == member_id
    )
    return int((await session.execute(stmt)).scalar_one())


async def counts(session: AsyncSession, sale_id: int) -> tuple[int, dict[int, int]]:
    """Units claimed in all, and per member, as the committed claim rows say."""
    stmt = (
        select(FlashClaim.member_id, func.count())
        .where(FlashClaim.sale_id == sale_id)
        .group_by(FlashClaim.member_id)
    )
    per_member = {int(m): int(n) for m, n in (await session.execute(stmt)).all()}
    return sum(per_member.values()), per_member


async def by_message(
    session: AsyncSession, sale_id: int, member_id: int, message_key: str
) -> str | None:
    """The claim code the message won for the member in this sale, if it won one."""
    stmt = select(FlashClaim.claim_code).where(
        FlashClaim.message_key == message_key,
        FlashClaim.sale_id == sale_id,
        FlashClaim.member_id == member_id,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def claims_held(session: AsyncSession, sale_id: int, member_id: int) -> list[str]:
    stmt = (
        select(FlashClaim.claim_code)
        .where(FlashClaim.sale_id == sale_id, FlashClaim.member_id == member_id)
        .order_by(FlashClaim.unit)
    )
    return list((await session.execute(stmt)).scalars())


async def claims(session: AsyncSession, sale_id: int) -> list[FlashClaim]:
    stmt = select(FlashClaim).where(FlashClaim.sale_id == sale_id).order_by(FlashClaim.id)
    return list((await session.execute(stmt)).scalars())


async def claim_by_code(session: AsyncSession, code: str) -> tuple[FlashClaim, str] | None:
    """The claim and its sale's code."""
    code = normalise_code(code)
    if not (code.isascii() and code.isalnum() and len(code) == CLAIM_CODE_LENGTH):
        return None
    stmt = (
        select(FlashClaim, FlashSale.code)
        .join(FlashSale, FlashSale.id == FlashClaim.sale_id)
        .where(FlashClaim.claim_code == code)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def use_claim(session: AsyncSession, claim_id: int, now: datetime) -> bool:
    """Mark a claim used; False when it was used already (the till's second scan)."""
    done = await session.execute(
        update(FlashClaim)
        .where(FlashClaim.id == claim_id, FlashClaim.used_at.is_(None))
        .values(used_at=now)
    )
    return rowcount(done) == 1


async def winners(session: AsyncSession, sale_id: int) -> int:
    stmt = select(func.count(func.distinct(FlashClaim.member_id))).where(
        FlashClaim.sale_id == sale_id
    )
    return int((await session.execute(stmt)).scalar_one())


async def merge(session: AsyncSession, survivor_id: int, loser_id: int) -> None:
    """Linked accounts: the loser's claims become the survivor's, numbered after the survivor's
    units of the same sale (the unique rows hold, and the limit counts both accounts)."""
    moving = (
        await session.execute(
            select(FlashClaim).where(FlashClaim.member_id == loser_id).order_by(FlashClaim.id)
        )
    ).scalars()
    for claim in list(moving):
        top = await session.execute(
            select(func.max(FlashClaim.unit)).where(
                FlashClaim.sale_id == claim.sale_id, FlashClaim.member_id == survivor_id
            )
        )
        await session.execute(
            update(FlashClaim)
            .where(FlashClaim.id == claim.id)
            .values(member_id=survivor_id, unit=int(top.scalar() or 0) + 1)
        )
