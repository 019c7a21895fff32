"""Read-only helpers for storage tests: what the database holds for one member."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from storage.db import Database
from storage.models import Checkin, LedgerEntry, Member


@dataclass(frozen=True)
class Entry:
    id: int
    kind: str
    amount: int
    key: str
    created_at: datetime
    expires_at: datetime | None
    remaining: int


async def entries(db: Database, member_id: int) -> list[Entry]:
    """Every ledger entry of the member, oldest first."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(
                LedgerEntry.id,
                LedgerEntry.kind,
                LedgerEntry.amount,
                LedgerEntry.idempotency_key,
                LedgerEntry.created_at,
                LedgerEntry.expires_at,
                LedgerEntry.remaining,
            )
            .where(LedgerEntry.member_id == member_id)
            .order_by(LedgerEntry.id)
        )
        return [Entry(*row) for row in rows]


async def remaining_by_key(db: Database, member_id: int) -> dict[str, int]:
    """`remaining` of every lot (entries with an expiry), by idempotency key."""
    return {e.key: e.remaining for e in await entries(db, member_id) if e.expires_at is not None}


async def points(db: Database, member_id: int) -> int:
    async with db.sessions() as session:
        return int(
            (
                await session.execute(select(Member.points).where(Member.id == member_id))
            ).scalar_one()
        )


async def member(db: Database, member_id: int) -> Member:
    async with db.sessions() as session:
        found = await session.get(Member, member_id)
        assert found is not None
        return found


async def count(db: Database, model: type, *where: object) -> int:
    async with db.sessions() as session:
        stmt = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return int((await session.execute(stmt)).scalar_one())


async def checkin_rows(db: Database, member_id: int) -> list[tuple[object, int, int]]:
    """(day, streak, points) of every check-in of the member, by day."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(Checkin.day, Checkin.streak, Checkin.points)
            .where(Checkin.member_id == member_id)
            .order_by(Checkin.day)
        )
        return [tuple(row) for row in rows]
