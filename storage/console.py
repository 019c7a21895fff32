"""Reads for the operators' console (the dashboard's lists): one statement per list, its
counts aggregated in SQL (grouped subqueries joined to the page's rows), never a query per
row. Lists are pages of `limit` rows; each read asks for one row more to know whether a next
page exists, so no separate count is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.campaigns import results, reward_slugs
from storage.models import (
    Campaign,
    CampaignRecipient,
    Community,
    FlashClaim,
    FlashSale,
    Identity,
    OutboxPush,
    Reward,
    Ticket,
    TicketEvent,
    TicketMessage,
    Voucher,
)
from storage.tickets import ACTIVE
from storage.vouchers import CANCELLED, EXPIRED, ISSUED, USED

T = TypeVar("T")
TICKET_FILTERS = ("open", "breached", "all")


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    number: int  # from 1
    more: bool  # a next page exists


def _page(rows: list[T], number: int, limit: int) -> Page[T]:
    return Page(rows[:limit], number, len(rows) > limit)


def _window(stmt: Select[Any], number: int, limit: int) -> Select[Any]:
    return stmt.limit(limit + 1).offset((number - 1) * limit)


def _tally(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _accounts_of(member_id: Any) -> tuple[Any, Any]:
    """The member's first account (channel, external id) as correlated scalar subqueries:
    the console links each row to the member's page, within the list's one statement."""
    inner, outer = aliased(Identity), aliased(Identity)
    first = (
        select(func.min(inner.id))
        .where(inner.member_id == member_id)
        .correlate_except(inner)
        .scalar_subquery()
    )

    def column(name: str) -> Any:
        return (
            select(getattr(outer, name))
            .where(outer.id == first)
            .correlate_except(outer)
            .scalar_subquery()
            .label(name)
        )

    return column("channel"), column("external_id")


# Flash sales ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SaleRow:
    sale: FlashSale
    community: str
    members: int  # distinct members who won at least one unit

    @property
    def minutes_to_sell_out(self) -> float | None:
        if self.sale.sold_out_at is None:
            return None
        return round((self.sale.sold_out_at - self.sale.starts_at).total_seconds() / 60, 1)


async def flash_sales(
    session: AsyncSession, number: int, limit: int, state: str | None = None
) -> Page[SaleRow]:
    """Sales, the latest start first, with their community and how many members won
    (counted per row of the page by the claims' unique (sale, member, unit) index)."""
    winners = (
        select(func.count(func.distinct(FlashClaim.member_id)))
        .where(FlashClaim.sale_id == FlashSale.id)
        .correlate(FlashSale)
        .scalar_subquery()
    )
    stmt = (
        select(FlashSale, Community.slug, winners)
        .join(Community, Community.id == FlashSale.community_id)
        .order_by(FlashSale.starts_at.desc(), FlashSale.id.desc())
    )
    if state is not None:
        stmt = stmt.where(FlashSale.state == state)
    rows = await session.execute(_window(stmt, number, limit))
    found = [SaleRow(sale, slug, int(n)) for sale, slug, n in rows.all()]
    return _page(found, number, limit)


async def flash_sale(session: AsyncSession, code: str) -> SaleRow | None:
    stmt = (
        select(FlashSale, Community.slug, func.count(func.distinct(FlashClaim.member_id)))
        .join(Community, Community.id == FlashSale.community_id)
        .outerjoin(FlashClaim, FlashClaim.sale_id == FlashSale.id)
        .where(FlashSale.code == code.strip().upper())
        .group_by(FlashSale.id, Community.slug)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else SaleRow(row[0], row[1], int(row[2]))


@dataclass(frozen=True)
class ClaimRow:
    claim: FlashClaim
    channel: str | None
    external_id: str | None


async def sale_claims(
    session: AsyncSession, sale_id: int, number: int, limit: int
) -> Page[ClaimRow]:
    """A sale's claims in the order they were won, each with the winner's first account."""
    channel, external = _accounts_of(FlashClaim.member_id)
    stmt = (
        select(FlashClaim, channel, external)
        .where(FlashClaim.sale_id == sale_id)
        .order_by(FlashClaim.claimed_at, FlashClaim.id)
    )
    rows = await session.execute(_window(stmt, number, limit))
    return _page([ClaimRow(c, ch, ext) for c, ch, ext in rows.all()], number, limit)


# Rewards ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardRow:
    reward: Reward
    vouchers: int  # every voucher ever issued of it, also cancelled ones
    open: int  # issued, not expired yet
    used: int
    expired: int
    cancelled: int
    gifts: int  # given for nothing (welcome, birthday, campaigns): cost 0


async def rewards(session: AsyncSession, now: datetime, number: int, limit: int) -> Page[RewardRow]:
    """The points mall's rewards (retired ones too), cheapest first, with their vouchers
    counted by state as the till sees it (an issued voucher past its date is expired)."""
    live = and_(Voucher.state == ISSUED, Voucher.expires_at > now)
    lapsed = or_(Voucher.state == EXPIRED, and_(Voucher.state == ISSUED, Voucher.expires_at <= now))
    counts = (
        select(
            Voucher.reward_id.label("reward_id"),
            func.count().label("vouchers"),
            _tally(live).label("open"),
            _tally(Voucher.state == USED).label("used"),
            _tally(lapsed).label("expired"),
            _tally(Voucher.state == CANCELLED).label("cancelled"),
            _tally(Voucher.cost == 0).label("gifts"),
        )
        .group_by(Voucher.reward_id)
        .subquery()
    )
    tallies = [
        counts.c.vouchers,
        counts.c.open,
        counts.c.used,
        counts.c.expired,
        counts.c.cancelled,
        counts.c.gifts,
    ]
    stmt = (
        select(Reward, *[func.coalesce(c, 0) for c in tallies])
        .outerjoin(counts, counts.c.reward_id == Reward.id)
        .order_by(Reward.active.desc(), Reward.cost, Reward.slug)
    )
    rows = await session.execute(_window(stmt, number, limit))
    found = [RewardRow(r, *(int(n) for n in rest)) for r, *rest in rows.all()]
    return _page(found, number, limit)


# Tickets ---------------------------------------------------------------------------------


def breached(now: datetime) -> ColumnElement[bool]:
    """The first-response deadline was missed: answered late, or unanswered and past due
    (as the stats judge it)."""
    answered = Ticket.first_response_at.is_not(None)
    return or_(
        and_(answered, Ticket.first_response_at > Ticket.first_response_due),
        and_(~answered, Ticket.first_response_due < now),
    )


@dataclass(frozen=True)
class TicketSummary:
    open: int
    breached_open: int  # active tickets whose deadline was missed
    breached: int  # every ticket whose deadline was missed
    scored: int
    average_score: float | None
    scores: dict[int, int]  # 1..5 -> how many


async def ticket_summary(session: AsyncSession, now: datetime) -> TicketSummary:
    late = breached(now)
    active = Ticket.state.in_(ACTIVE)
    stmt = select(
        _tally(active),
        _tally(active & late),
        _tally(late),
        func.count(Ticket.score),
        func.avg(Ticket.score),
        *[_tally(Ticket.score == n) for n in range(1, 6)],
    )
    row = (await session.execute(stmt)).one()
    average = None if row[4] is None else round(float(row[4]), 2)
    scores = {n: int(row[4 + n]) for n in range(1, 6)}
    return TicketSummary(int(row[0]), int(row[1]), int(row[2]), int(row[3]), average, scores)


@dataclass(frozen=True)
class TicketRow:
    ticket: Ticket
    breached: bool
    channel: str | None
    external_id: str | None


async def tickets(
    session: AsyncSession, now: datetime, which: str, number: int, limit: int
) -> Page[TicketRow]:
    """`open`: active tickets, the soonest deadline first; `breached`: every ticket whose
    deadline was missed, newest first; `all`: every ticket, newest first."""
    late = breached(now)
    channel, external = _accounts_of(Ticket.member_id)
    stmt = select(Ticket, late.label("late"), channel, external)
    if which == "open":
        stmt = stmt.where(Ticket.state.in_(ACTIVE)).order_by(Ticket.first_response_due, Ticket.id)
    else:
        if which == "breached":
            stmt = stmt.where(late)
        stmt = stmt.order_by(Ticket.created_at.desc(), Ticket.id.desc())
    rows = await session.execute(_window(stmt, number, limit))
    found = [TicketRow(t, bool(b), ch, ext) for t, b, ch, ext in rows.all()]
    return _page(found, number, limit)


@dataclass(frozen=True)
class TicketPage:
    row: TicketRow
    messages: list[TicketMessage]
    events: list[TicketEvent]


async def ticket(session: AsyncSession, ticket_id: int, now: datetime) -> TicketPage | None:
    channel, external = _accounts_of(Ticket.member_id)
    stmt = select(Ticket, breached(now), channel, external).where(Ticket.id == ticket_id)
    found = (await session.execute(stmt)).first()
    if found is None:
        return None
    row = TicketRow(found[0], bool(found[1]), found[2], found[3])
    said = select(TicketMessage).where(TicketMessage.ticket_id == ticket_id)
    done = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
    messages = list((await session.execute(said.order_by(TicketMessage.id))).scalars())
    events = list((await session.execute(done.order_by(TicketEvent.id))).scalars())
    return TicketPage(row, messages, events)


# Campaigns -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignRow:
    campaign: Campaign
    results: dict[str, int]
    reward_voucher: str | None


async def campaigns(session: AsyncSession, number: int, limit: int) -> Page[CampaignRow]:
    """Campaigns, newest first, with their results (two grouped queries for the page)."""
    stmt = select(Campaign).order_by(Campaign.id.desc())
    found = list((await session.execute(_window(stmt, number, limit))).scalars())
    shown = found[:limit]
    tallies = await results(session, [c.id for c in shown])
    slugs = await reward_slugs(session, shown)
    rows = [CampaignRow(c, tallies[c.id], slugs.get(c.id)) for c in shown]
    return Page(rows, number, len(found) > limit)


async def campaign(session: AsyncSession, campaign_id: int) -> CampaignRow | None:
    found = await session.get(Campaign, campaign_id)
    if found is None:
        return None
    tallies = await results(session, [found.id])
    slugs = await reward_slugs(session, [found])
    return CampaignRow(found, tallies[found.id], slugs.get(found.id))


@dataclass(frozen=True)
class RecipientRow:
    recipient: CampaignRecipient
    push_state: str | None
    push_error: str | None
    voucher_state: str | None
    channel: str | None
    external_id: str | None


async def recipients(
    session: AsyncSession, campaign_id: int, number: int, limit: int
) -> Page[RecipientRow]:
    """A campaign's recipients in the order they were queued, with their push and voucher."""
    channel, external = _accounts_of(CampaignRecipient.member_id)
    stmt = (
        select(
            CampaignRecipient,
            OutboxPush.state,
            OutboxPush.last_error,
            Voucher.state,
            channel,
            external,
        )
        .outerjoin(OutboxPush, OutboxPush.id == CampaignRecipient.outbox_id)
        .outerjoin(Voucher, Voucher.id == CampaignRecipient.voucher_id)
        .where(CampaignRecipient.campaign_id == campaign_id)
        .order_by(CampaignRecipient.id)
    )
    rows = await session.execute(_window(stmt, number, limit))
    return _page([RecipientRow(*row) for row in rows.all()], number, limit)
