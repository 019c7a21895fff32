"""Campaigns: who a segment is (in SQL), each recipient once, and what became of them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring
from storage.models import (
    Campaign,
    CampaignRecipient,
    Checkin,
    Community,
    CommunityMember,
    Identity,
    Member,
    Order,
    OutboxPush,
    Reward,
    Voucher,
)
from storage.vouchers import USED

SCHEDULED, SENDING, SENT = "scheduled", "sending", "sent"
QUEUED, MUTED, UNREACHABLE = "queued", "muted", "unreachable"
SPEND_DAYS = 365  # "top N % by spend" looks at the last year of orders

_recipients: Table = CampaignRecipient.__table__  # type: ignore[assignment]
_INSERT_RECIPIENT = insert_ignoring(
    _recipients,
    ("campaign_id", "member_id", "status", "outbox_id", "created_at"),
    ("campaign_id", "member_id"),
    "id",
)


@dataclass(frozen=True)
class Segment:
    """Filters a member must all match; None (or empty) means any."""

    tiers: tuple[str, ...] = ()
    community: str | None = None
    channel: str | None = None
    dormant_days: int | None = None
    birthday_month: int | None = None
    top_spend_percent: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "tier": list(self.tiers) or None,
            "community": self.community,
            "channel": self.channel,
            "dormant_days": self.dormant_days,
            "birthday_month": self.birthday_month,
            "top_spend_percent": self.top_spend_percent,
        }
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Segment:
        return cls(
            tiers=tuple(data.get("tier") or ()),
            community=data.get("community"),
            channel=data.get("channel"),
            dormant_days=data.get("dormant_days"),
            birthday_month=data.get("birthday_month"),
            top_spend_percent=data.get("top_spend_percent"),
        )


async def _top_spenders(session: AsyncSession, now: datetime, percent: int) -> list[int]:
    """The top `percent` % (rounded up) of members who spent in the last year, by spend."""
    spend = func.sum(Order.amount - Order.refunded_amount)
    stmt = (
        select(Order.member_id)
        .where(Order.created_at > now - timedelta(days=SPEND_DAYS))
        .group_by(Order.member_id)
        .having(spend > 0)
        .order_by(spend.desc(), Order.member_id)
    )
    spenders = list((await session.execute(stmt)).scalars())
    return spenders[: math.ceil(len(spenders) * percent / 100)]


async def _members(
    session: AsyncSession, segment: Segment, now: datetime, today: date
) -> Select[tuple[int]]:
    """The segment's member ids: live members (not merged, not erased) matching every filter."""
    account = exists().where(Identity.member_id == Member.id)
    if segment.channel is not None:
        account = account.where(Identity.channel == segment.channel)
    stmt = select(Member.id).where(Member.merged_into_id.is_(None), account)
    if segment.tiers:
        stmt = stmt.where(Member.tier.in_(segment.tiers))
    if segment.community is not None:
        stmt = stmt.where(
            exists().where(
                CommunityMember.member_id == Member.id,
                CommunityMember.status == "joined",
                CommunityMember.community_id == Community.id,
                Community.slug == segment.community,
            )
        )
    if segment.dormant_days is not None:
        days = segment.dormant_days
        since = now - timedelta(days=days)
        checked_in = exists().where(
            Checkin.member_id == Member.id, Checkin.day > today - timedelta(days=days)
        )
        ordered = exists().where(Order.member_id == Member.id, Order.created_at > since)
        stmt = stmt.where(Member.created_at <= since, ~checked_in, ~ordered)
    if segment.birthday_month is not None:
        stmt = stmt.where(Member.birthday.like(f"{segment.birthday_month:02d}-%"))
    if segment.top_spend_percent is not None:
        stmt = stmt.where(
            Member.id.in_(await _top_spenders(session, now, segment.top_spend_percent))
        )
    return stmt


async def segment_ids(
    session: AsyncSession, segment: Segment, now: datetime, today: date
) -> list[int]:
    stmt = (await _members(session, segment, now, today)).order_by(Member.id)
    return list((await session.execute(stmt)).scalars())


async def segment_count(session: AsyncSession, segment: Segment, now: datetime, today: date) -> int:
    inner = (await _members(session, segment, now, today)).subquery()
    return int((await session.execute(select(func.count()).select_from(inner))).scalar_one())


async def create(
    session: AsyncSession,
    name: str,
    segment: Segment,
    texts: dict[str, str],
    reward_points: int,
    send_at: datetime,
    now: datetime,
    reward_id: int | None = None,
) -> Campaign:
    campaign = Campaign(
        name=name,
        segment=segment.to_json(),
        texts=texts,
        reward_points=reward_points,
        reward_id=reward_id,
        state=SCHEDULED,
        send_at=send_at,
        created_at=now,
    )
    session.add(campaign)
    await session.flush()
    return campaign


async def get(session: AsyncSession, campaign_id: int) -> Campaign | None:
    return await session.get(Campaign, campaign_id)


async def listing(session: AsyncSession, limit: int) -> list[Campaign]:
    stmt = select(Campaign).order_by(Campaign.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def reward_slugs(session: AsyncSession, found: Sequence[Campaign]) -> dict[int, str]:
    """The slug of each campaign's voucher reward, for those that give one (one query)."""
    wanted = {c.id: c.reward_id for c in found if c.reward_id is not None}
    if not wanted:
        return {}
    stmt = select(Reward.id, Reward.slug).where(Reward.id.in_(set(wanted.values())))
    slugs = {int(rid): str(slug) for rid, slug in await session.execute(stmt)}
    return {cid: slugs[rid] for cid, rid in wanted.items() if rid in slugs}


async def due(session: AsyncSession, now: datetime) -> list[int]:
    """Campaigns whose time has come and that are not fully queued yet (oldest first)."""
    stmt = (
        select(Campaign.id)
        .where(Campaign.state.in_((SCHEDULED, SENDING)), Campaign.send_at <= now)
        .order_by(Campaign.send_at, Campaign.id)
    )
    return list((await session.execute(stmt)).scalars())


async def start(session: AsyncSession, campaign_id: int, now: datetime) -> None:
    await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.state == SCHEDULED)
        .values(state=SENDING, started_at=now)
    )


async def finish(session: AsyncSession, campaign_id: int, now: datetime) -> None:
    await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.state != SENT)
        .values(state=SENT, finished_at=now)
    )


async def claim_recipient(
    session: AsyncSession, campaign_id: int, member_id: int, now: datetime
) -> int | None:
    """The member's recipient row, new; None when they were handled already (a re-run)."""
    values = {
        "campaign_id": campaign_id,
        "member_id": member_id,
        "status": QUEUED,
        "outbox_id": None,
        "created_at": now,
    }
    return (await session.execute(_INSERT_RECIPIENT, values)).scalar_one_or_none()


async def settle_recipient(
    session: AsyncSession,
    recipient_id: int,
    status: str,
    outbox_id: int | None,
    voucher_id: int | None = None,
) -> None:
    await session.execute(
        update(CampaignRecipient)
        .where(CampaignRecipient.id == recipient_id)
        .values(status=status, outbox_id=outbox_id, voucher_id=voucher_id)
    )


async def results(session: AsyncSession, campaign_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per campaign: recipients, sent, failed, opted_out (muted before or while sending),
    unreachable (no app could take it), pending (in the outbox still), redeemed (its gift
    vouchers used at the till)."""
    out = {
        cid: {"recipients": 0, "sent": 0, "failed": 0, "opted_out": 0, "pending": 0}
        | {"unreachable": 0, "redeemed": 0}
        for cid in campaign_ids
    }
    if not campaign_ids:
        return out
    stmt = (
        select(
            CampaignRecipient.campaign_id,
            CampaignRecipient.status,
            OutboxPush.state,
            OutboxPush.last_error,
            func.count(),
        )
        .outerjoin(OutboxPush, OutboxPush.id == CampaignRecipient.outbox_id)
        .where(CampaignRecipient.campaign_id.in_(campaign_ids))
        .group_by(
            CampaignRecipient.campaign_id,
            CampaignRecipient.status,
            OutboxPush.state,
            OutboxPush.last_error,
        )
    )
    for cid, status, state, error, count in await session.execute(stmt):
        tally = out[int(cid)]
        tally["recipients"] += count
        if status == MUTED or (state == "failed" and error == "muted"):
            tally["opted_out"] += count
        elif status == UNREACHABLE:
            tally["unreachable"] += count
        elif state == "sent":
            tally["sent"] += count
        elif state == "failed":
            tally["failed"] += count
        else:
            tally["pending"] += count
    used = (
        select(CampaignRecipient.campaign_id, func.count())
        .join(Voucher, Voucher.id == CampaignRecipient.voucher_id)
        .where(CampaignRecipient.campaign_id.in_(campaign_ids), Voucher.state == USED)
        .group_by(CampaignRecipient.campaign_id)
    )
    for cid, count in await session.execute(used):
        out[int(cid)]["redeemed"] = int(count)
    return out
