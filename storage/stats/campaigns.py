"""Campaigns of the period: how many started sending, and their reach (recipients, sent,
failed, opted out, unreachable, pending) counted the way GET /api/campaigns/{id} counts it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.campaigns import MUTED, UNREACHABLE
from storage.models import Campaign, CampaignRecipient, OutboxPush
from storage.stats.window import Window

OUTCOMES = ("sent", "failed", "opted_out", "unreachable", "pending")


async def summary(session: AsyncSession, window: Window) -> dict[str, Any]:
    started = and_(Campaign.started_at >= window.start, Campaign.started_at <= window.now)
    count = (
        await session.execute(select(func.count()).select_from(Campaign).where(started))
    ).scalar_one()
    # The same precedence as storage.campaigns.results: muted first, then unreachable, then
    # the outbox's state (a push the app refused because the member muted is an opt-out).
    opted_out = (CampaignRecipient.status == MUTED) | (
        (OutboxPush.state == "failed") & (OutboxPush.last_error == "muted")
    )
    outcome = case(
        (opted_out, "opted_out"),
        (CampaignRecipient.status == UNREACHABLE, "unreachable"),
        (OutboxPush.state == "sent", "sent"),
        (OutboxPush.state == "failed", "failed"),
        else_="pending",
    )
    stmt = (
        select(outcome, func.count())
        .select_from(CampaignRecipient)
        .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
        .outerjoin(OutboxPush, OutboxPush.id == CampaignRecipient.outbox_id)
        .where(started)
        .group_by(outcome)
    )
    tally = {key: 0 for key in OUTCOMES} | {
        str(key): int(n) for key, n in await session.execute(stmt)
    }
    return {"campaigns": int(count), "recipients": sum(tally.values()), **tally}
