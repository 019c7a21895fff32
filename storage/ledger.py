"""The points ledger: the only code that moves points.

Every movement is one append-only entry with a unique idempotency key, written in the caller's
transaction. Earned points form lots that expire; spending consumes the soonest-expiring lots
first. `members.points` is kept equal to the sum of the member's entries, in the same statement
batch, so reads never have to add the ledger up. The reads themselves are in
storage/ledger_reads.py (re-exported here: callers keep `ledger.balance_of`, `ledger.recent`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring
from storage.errors import InsufficientPoints, MemberMerged
from storage.ledger_reads import balance_of as balance_of
from storage.ledger_reads import entry as entry
from storage.ledger_reads import expiring_within as expiring_within
from storage.ledger_reads import ledger_sum as ledger_sum
from storage.ledger_reads import members_with_due_lots as members_with_due_lots
from storage.ledger_reads import recent as recent
from storage.models import LedgerEntry, Member

EARN, SPEND, EXPIRE, ADJUST, REVERSE = "earn", "spend", "expire", "adjust", "reverse"

_entries: Table = LedgerEntry.__table__  # type: ignore[assignment]
_members: Table = Member.__table__  # type: ignore[assignment]
_INSERT_ENTRY = insert_ignoring(
    _entries,
    (
        "member_id",
        "kind",
        "amount",
        "reason",
        "idempotency_key",
        "created_at",
        "expires_at",
        "remaining",
    ),
    ("idempotency_key",),
    "id",
)
_BUMP_POINTS = (
    update(_members)
    # Never into a merged member: a message in flight while its accounts are linked would
    # otherwise credit the empty shell (PostgreSQL re-checks this after the merge's lock).
    .where(_members.c.id == bindparam("member_id"), _members.c.merged_into_id.is_(None))
    .values(points=_members.c.points + bindparam("amount"))
    .returning(_members.c.points)
)


@dataclass(frozen=True)
class Movement:
    """The outcome of one ledger call: `applied` is False when the key was already used."""

    applied: bool
    amount: int
    balance: int


async def lock_member(session: AsyncSession, member_id: int) -> Member:
    """Row-lock the member for the rest of the transaction (SQLite already serialises writers).

    A member merged into another (linked accounts) takes no more writes: MemberMerged."""
    stmt = select(Member).where(Member.id == member_id).with_for_update()
    member = (await session.execute(stmt)).scalar_one()
    if member.merged_into_id is not None:
        raise MemberMerged(member_id)
    return member


async def _append(
    session: AsyncSession,
    member_id: int,
    kind: str,
    amount: int,
    reason: str,
    key: str,
    now: datetime,
    *,
    expires_at: datetime | None = None,
) -> int | None:
    """Insert one entry unless its key exists; returns the new balance, or None for a repeat."""
    params = {
        "member_id": member_id,
        "kind": kind,
        "amount": amount,
        "reason": reason[:64],
        "idempotency_key": key,
        "created_at": now,
        "expires_at": expires_at,
        "remaining": amount if expires_at is not None else 0,
    }
    if (await session.execute(_INSERT_ENTRY, params)).scalar_one_or_none() is None:
        return None
    bumped = await session.execute(_BUMP_POINTS, {"member_id": member_id, "amount": amount})
    points = bumped.scalar_one_or_none()
    if points is None:
        raise MemberMerged(member_id)
    return int(points)


async def earn(
    session: AsyncSession,
    member_id: int,
    amount: int,
    reason: str,
    key: str,
    now: datetime,
    *,
    expiry_days: int,
    kind: str = EARN,
) -> Movement:
    """Credit a new lot that expires `expiry_days` after `now`."""
    if amount <= 0:
        raise ValueError("earn needs a positive amount")
    expires = now + timedelta(days=expiry_days)
    balance = await _append(session, member_id, kind, amount, reason, key, now, expires_at=expires)
    if balance is None:
        return Movement(False, 0, await balance_of(session, member_id))
    return Movement(True, amount, balance)


async def _consume(
    session: AsyncSession, member_id: int, amount: int, now: datetime, first_lot: int | None = None
) -> None:
    """Take `amount` out of open lots: `first_lot` first, then the soonest-expiring ones."""
    lots = list(
        (
            await session.execute(
                select(LedgerEntry.id, LedgerEntry.remaining)
                .where(
                    LedgerEntry.member_id == member_id,
                    LedgerEntry.remaining > 0,
                    LedgerEntry.expires_at > now,
                )
                .order_by(LedgerEntry.expires_at, LedgerEntry.id)
            )
        ).all()
    )
    lots.sort(key=lambda lot: lot.id != first_lot)  # stable: keeps FIFO among the rest
    left = amount
    for lot_id, remaining in lots:
        if left == 0:
            break
        take = min(left, remaining)
        await session.execute(
            update(LedgerEntry)
            .where(LedgerEntry.id == lot_id)
            .values(remaining=LedgerEntry.remaining - take)
        )
        left -= take
    if left:
        raise InsufficientPoints(amount - left, amount)


async def spend(
    session: AsyncSession,
    member_id: int,
    amount: int,
    reason: str,
    key: str,
    now: datetime,
    *,
    kind: str = SPEND,
) -> Movement:
    """Debit `amount`, refusing (InsufficientPoints) rather than going below zero."""
    if amount <= 0:
        raise ValueError("spend needs a positive amount")
    member = await lock_member(session, member_id)
    if await _key_used(session, key):
        return Movement(False, 0, member.points)
    await expire_due(session, member_id, now)
    balance = await balance_of(session, member_id)
    if balance < amount:
        raise InsufficientPoints(balance, amount)
    await _consume(session, member_id, amount, now)
    new_balance = await _append(session, member_id, kind, -amount, reason, key, now)
    assert new_balance is not None  # the key was checked under the member lock
    return Movement(True, -amount, new_balance)


async def adjust(
    session: AsyncSession,
    member_id: int,
    amount: int,
    reason: str,
    key: str,
    now: datetime,
    *,
    expiry_days: int,
) -> Movement:
    """An operator's correction: positive opens a lot, negative spends (never below zero)."""
    if amount > 0:
        return await earn(
            session, member_id, amount, reason, key, now, expiry_days=expiry_days, kind=ADJUST
        )
    if amount < 0:
        return await spend(session, member_id, -amount, reason, key, now, kind=ADJUST)
    raise ValueError("an adjustment of zero points moves nothing")


async def reverse(
    session: AsyncSession,
    member_id: int,
    amount: int,
    reason: str,
    key: str,
    now: datetime,
    *,
    lot_key: str | None = None,
) -> Movement:
    """Take back up to `amount` earned points (a refund), from the original lot first.

    Points already spent cannot be taken back, so the reversal is capped at the balance.
    """
    member = await lock_member(session, member_id)
    if amount <= 0 or await _key_used(session, key):
        return Movement(False, 0, member.points)
    await expire_due(session, member_id, now)
    balance = await balance_of(session, member_id)
    take = min(amount, balance)
    first_lot = None
    if lot_key is not None:
        first_lot = (
            await session.execute(
                select(LedgerEntry.id).where(LedgerEntry.idempotency_key == lot_key)
            )
        ).scalar_one_or_none()
    if take:
        await _consume(session, member_id, take, now, first_lot)
    new_balance = await _append(session, member_id, REVERSE, -take, reason, key, now)
    assert new_balance is not None
    return Movement(True, -take, new_balance)


async def expire_due(session: AsyncSession, member_id: int, now: datetime) -> int:
    """Write an expire entry for every lot past its date; returns the points expired."""
    await lock_member(session, member_id)
    lots = (
        await session.execute(
            select(LedgerEntry.id, LedgerEntry.remaining).where(
                LedgerEntry.member_id == member_id,
                LedgerEntry.remaining > 0,
                LedgerEntry.expires_at <= now,
            )
        )
    ).all()
    total = 0
    for lot_id, remaining in lots:
        await session.execute(
            update(LedgerEntry).where(LedgerEntry.id == lot_id).values(remaining=0)
        )
        await _append(session, member_id, EXPIRE, -remaining, "expired", f"expire:{lot_id}", now)
        total += remaining
    return total


async def _key_used(session: AsyncSession, key: str) -> bool:
    stmt = select(LedgerEntry.id).where(LedgerEntry.idempotency_key == key)
    return (await session.execute(stmt)).scalar_one_or_none() is not None
