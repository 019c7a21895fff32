"""Campaigns reaching members: each recipient's message (and gift) queued once, through the
outbox, as a marketing push (muted members get none, quiet hours are waited out).

Operators create them (bot/admin/campaigns.py); `hook` sends those whose time has come.
A campaign's gift is points, a voucher of a points-mall reward, or both.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import local_day
from bot.core.context import Services
from bot.core.i18n import N_, Translator
from bot.core.messages import Reply
from bot.jobs.pushes import push_to_member, reachable
from handlers.rewards import name_of
from storage import campaigns, gifts, ledger, members
from storage.models import Campaign, Reward

KIND = "campaign"
BATCH = 100  # recipients queued per transaction
GIFT = N_("Gift: +{points} points. Balance: {balance}.")
GIFT_VOUCHER = N_("Gift: {name}. Voucher code: {code} (valid until {day}).")

Progress = Callable[[int, int], None]  # (done, total)


def recipient_key(campaign_id: int, member_id: int) -> str:
    return f"{KIND}:{campaign_id}:{member_id}"


def text_for(campaign: Campaign, locale: str, default_locale: str) -> str:
    """The campaign's text in the member's language, else the default's, else any."""
    texts = campaign.texts
    return texts.get(locale) or texts.get(default_locale) or next(iter(texts.values()))


async def send(services: Services, campaign_id: int, progress: Progress | None = None) -> int:
    """Queue the campaign to its segment; returns how many pushes were queued by this run.

    Safe to run again, or in two processes at once: each member is claimed once (a unique
    recipient row written with the push and the gift), so nobody gets it twice."""
    now = services.clock.now()
    today = local_day(now, services.settings.tz)
    async with services.db.transaction() as session:
        campaign = await campaigns.get(session, campaign_id)
        if campaign is None or campaign.state == campaigns.SENT:
            return 0
        await campaigns.start(session, campaign_id, now)
        segment = campaigns.Segment.from_json(campaign.segment)
        ids = await campaigns.segment_ids(session, segment, now, today)
        reward = await session.get(Reward, campaign.reward_id) if campaign.reward_id else None
        voucher_slug = reward.slug if reward is not None else None
    queued = 0
    for start in range(0, len(ids), BATCH):
        async with services.db.transaction() as session:
            for member_id in ids[start : start + BATCH]:
                queued += await _one(services, session, campaign, voucher_slug, member_id)
        if progress is not None:
            progress(min(start + BATCH, len(ids)), len(ids))
    if progress is not None and not ids:
        progress(0, 0)
    async with services.db.transaction() as session:
        await campaigns.finish(session, campaign_id, services.clock.now())
    if queued:
        services.pushes.wake()
    return queued


async def _one(
    services: Services,
    session: AsyncSession,
    campaign: Campaign,
    voucher_slug: str | None,
    member_id: int,
) -> int:
    now = services.clock.now()
    recipient = await campaigns.claim_recipient(session, campaign.id, member_id, now)
    if recipient is None:
        return 0  # an earlier (or concurrent) run had this member
    key = recipient_key(campaign.id, member_id)
    channels = frozenset(services.senders.pushers) or None
    if not await reachable(session, member_id, KIND, channels):
        member = await members.get(session, member_id)
        muted = member is not None and member.muted_at is not None
        status = campaigns.MUTED if muted else campaigns.UNREACHABLE
        await campaigns.settle_recipient(session, recipient, status, None)
        return 0
    gift = campaign.reward_points
    balance = 0
    if gift:
        member = await members.get(session, member_id)
        balance = (member.points if member else 0) + gift
    # The voucher under the recipient's key: one per campaign and member, whatever re-runs.
    # None when the reward was retired or sold out meanwhile: the message still goes.
    given = await gifts.give(session, member_id, voucher_slug, key, now) if voucher_slug else None
    tz = services.settings.tz

    def render(t: Translator) -> Reply:
        text = text_for(campaign, t.locale, services.settings.default_locale)
        if gift:
            text += "\n" + t(GIFT, points=gift, balance=balance)
        if given is not None:
            voucher, reward = given
            day = voucher.expires_at.astimezone(tz).date().isoformat()
            name = name_of(reward, t.locale)
            text += "\n" + t(GIFT_VOUCHER, name=name, code=voucher.code, day=day)
        return Reply(text, private=True)

    pushed = await push_to_member(
        session, services, member_id, KIND, key, render, channels=channels
    )
    voucher_id = given[0].id if given is not None else None
    if pushed is None:  # not after `reachable` in this transaction; kept whole all the same
        await campaigns.settle_recipient(
            session, recipient, campaigns.UNREACHABLE, None, voucher_id
        )
        return 0
    await campaigns.settle_recipient(session, recipient, campaigns.QUEUED, pushed, voucher_id)
    if gift:
        await ledger.earn(
            session,
            member_id,
            gift,
            "campaign",
            key,
            now,
            expiry_days=services.rules.points.expiry_days,
        )
    return 1


async def hook(services: Services) -> int:
    """Every minute: send the campaigns whose time has come (and finish any left half way)."""
    async with services.db.reader() as session:
        due = await campaigns.due(session, services.clock.now())
    return sum([await send(services, campaign_id) for campaign_id in due])
