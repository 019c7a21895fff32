"""Reads for the console's member page: the member, then each of their lists (accounts,
ledger, complaints, vouchers, flash-sale claims, communities) as the latest `limit` rows with
the count of them all, each list in one statement (the total is a window count over the same
rows, taken before the LIMIT), so the page runs as many statements whatever the member holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Checkin,
    Community,
    CommunityMember,
    FlashClaim,
    FlashSale,
    Identity,
    LedgerEntry,
    Member,
    Reward,
    Ticket,
    TicketMessage,
    Voucher,
)
from storage.vouchers import EXPIRED, ISSUED

T = TypeVar("T")
LIMIT = 20  # rows of each of the page's lists


@dataclass(frozen=True)
class Bounded(Generic[T]):
    rows: list[T]
    total: int  # every row there is (the page shows the latest `limit`)

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


async def _bounded(session: AsyncSession, stmt: Select[Any], limit: int) -> Bounded[Any]:
    """The statement's first `limit` rows, each with the count of all its rows appended."""
    rows = (await session.execute(stmt.add_columns(func.count().over()).limit(limit))).all()
    total = int(rows[0][-1]) if rows else 0
    return Bounded([tuple(r)[:-1] for r in rows], total)


@dataclass(frozen=True)
class Profile:
    member: Member
    streak: int  # the check-in streak still alive today


async def profile(session: AsyncSession, member_id: int, today: date) -> Profile | None:
    """The member with their live check-in streak (the last check-in's, if it was today or
    yesterday), in one statement."""

    def last(column: Any) -> Any:
        return (
            select(column)
            .where(Checkin.member_id == member_id)
            .order_by(Checkin.day.desc())
            .limit(1)
            .scalar_subquery()
        )

    stmt = select(Member, last(Checkin.day), last(Checkin.streak)).where(Member.id == member_id)
    found = (await session.execute(stmt)).first()
    if found is None:
        return None
    member, day, streak = found
    alive = day is not None and (today - day).days <= 1
    return Profile(member, int(streak) if alive else 0)


async def member_of_account(session: AsyncSession, channel: str, external_id: str) -> int | None:
    stmt = select(Identity.member_id).where(
        Identity.channel == channel, Identity.external_id == external_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def accounts(session: AsyncSession, member_id: int, limit: int = LIMIT) -> Bounded[Identity]:
    """Their app accounts, oldest first (none once they asked to be forgotten)."""
    stmt = select(Identity).where(Identity.member_id == member_id).order_by(Identity.id)
    found = await _bounded(session, stmt, limit)
    return Bounded([r[0] for r in found.rows], found.total)


async def ledger(session: AsyncSession, member_id: int, limit: int = LIMIT) -> Bounded[LedgerEntry]:
    stmt = (
        select(LedgerEntry)
        .where(LedgerEntry.member_id == member_id)
        .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
    )
    found = await _bounded(session, stmt, limit)
    return Bounded([r[0] for r in found.rows], found.total)


@dataclass(frozen=True)
class TicketLine:
    ticket: Ticket
    last_reply_at: datetime | None  # the latest message on it, from either side


async def tickets(session: AsyncSession, member_id: int, limit: int = LIMIT) -> Bounded[TicketLine]:
    """Their complaints, newest first, each with when its conversation last moved."""
    last = (
        select(func.max(TicketMessage.at))
        .where(TicketMessage.ticket_id == Ticket.id)
        .correlate(Ticket)
        .scalar_subquery()
    )
    stmt = (
        select(Ticket, last)
        .where(Ticket.member_id == member_id)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
    )
    found = await _bounded(session, stmt, limit)
    return Bounded([TicketLine(t, at) for t, at in found.rows], found.total)


@dataclass(frozen=True)
class VoucherLine:
    voucher: Voucher
    reward_slug: str
    reward_names: dict[str, str]
    state: str  # as the till sees it: an issued voucher past its date is expired


async def vouchers(
    session: AsyncSession, member_id: int, now: datetime, limit: int = LIMIT
) -> Bounded[VoucherLine]:
    """Their vouchers, the latest issued first, with the reward they are for."""
    seen = case(
        (and_(Voucher.state == ISSUED, Voucher.expires_at <= now), EXPIRED),
        else_=Voucher.state,
    )
    stmt = (
        select(Voucher, Reward.slug, Reward.names, seen)
        .join(Reward, Reward.id == Voucher.reward_id)
        .where(Voucher.member_id == member_id)
        .order_by(Voucher.issued_at.desc(), Voucher.id.desc())
    )
    found = await _bounded(session, stmt, limit)
    return Bounded([VoucherLine(v, s, dict(n), str(st)) for v, s, n, st in found.rows], found.total)


@dataclass(frozen=True)
class ClaimLine:
    claim: FlashClaim
    sale_code: str


async def claims(session: AsyncSession, member_id: int, limit: int = LIMIT) -> Bounded[ClaimLine]:
    """The flash-sale units they won, the latest first, with the sale's code."""
    stmt = (
        select(FlashClaim, FlashSale.code)
        .join(FlashSale, FlashSale.id == FlashClaim.sale_id)
        .where(FlashClaim.member_id == member_id)
        .order_by(FlashClaim.claimed_at.desc(), FlashClaim.id.desc())
    )
    found = await _bounded(session, stmt, limit)
    return Bounded([ClaimLine(c, code) for c, code in found.rows], found.total)


@dataclass(frozen=True)
class CommunityLine:
    membership: CommunityMember
    slug: str
    names: dict[str, str]


async def communities(
    session: AsyncSession, member_id: int, limit: int = LIMIT
) -> Bounded[CommunityLine]:
    """The communities they joined (and those they left), the latest joined first."""
    stmt = (
        select(CommunityMember, Community.slug, Community.names)
        .join(Community, Community.id == CommunityMember.community_id)
        .where(CommunityMember.member_id == member_id)
        .order_by(CommunityMember.joined_at.desc(), CommunityMember.id.desc())
    )
    found = await _bounded(session, stmt, limit)
    return Bounded([CommunityLine(m, s, dict(n)) for m, s, n in found.rows], found.total)
