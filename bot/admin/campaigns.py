"""Operator actions on campaigns: check and create one (now or at a time), preview how many
members its segment reaches, list them, and show each one's results."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.admin import fields
from bot.admin.errors import Invalid, NotFound
from bot.core.clock import local_day
from bot.core.context import Services
from bot.settings import LOCALES
from handlers.campaigns import Progress, send
from storage import campaigns, communities, rewards
from storage.models import Campaign, Reward

NAME_MAX, TEXT_MAX = 64, 2000
LIST_MAX, LIST_DEFAULT = 500, 50
FIELDS = ("name", "segment", "texts", "reward_points", "reward_voucher", "send_at", "dry_run")
SEGMENT_FIELDS = (
    "tier",
    "community",
    "channel",
    "dormant_days",
    "birthday_month",
    "top_spend_percent",
)


async def parse_segment(services: Services, raw: object) -> campaigns.Segment:
    """`segment`: every filter given must match; none given reaches every member."""
    if raw is None:
        return campaigns.Segment()
    if not isinstance(raw, Mapping):
        raise Invalid("segment", "segment must be an object")
    fields.no_unknown(raw, SEGMENT_FIELDS, "segment")
    names = [t.name for t in services.rules.tiers]
    tiers = raw.get("tier")
    tier_list = [tiers] if isinstance(tiers, str) else tiers
    if tier_list is not None and (
        not isinstance(tier_list, list) or not tier_list or any(t not in names for t in tier_list)
    ):
        raise Invalid("segment.tier", f"segment.tier must be one or more of {', '.join(names)}")
    community = raw.get("community")
    if community is not None:
        fields.slug(community, "segment.community")
        async with services.db.reader() as session:
            if await communities.by_slug(session, community) is None:
                raise Invalid("segment.community", f"no community {community}")
    channel = raw.get("channel")
    if channel is not None and channel not in fields.CHANNELS:
        raise Invalid(
            "segment.channel", f"segment.channel must be one of {', '.join(fields.CHANNELS)}"
        )

    def number(name: str, low: int, high: int) -> int | None:
        value = raw.get(name)
        return None if value is None else fields.whole_number(f"segment.{name}", value, low, high)

    return campaigns.Segment(
        tiers=tuple(tier_list or ()),
        community=community,
        channel=channel,
        dormant_days=number("dormant_days", 1, 3650),
        birthday_month=number("birthday_month", 1, 12),
        top_spend_percent=number("top_spend_percent", 1, 100),
    )


def parse_texts(raw: object) -> dict[str, str]:
    """`texts`: the message per language (zh_CN, zh_TW, en), at least one."""
    if not isinstance(raw, Mapping) or not raw:
        raise Invalid(
            "texts", f"texts must be an object of language to text ({', '.join(LOCALES)})"
        )
    texts = {}
    for locale, text in raw.items():
        if locale not in LOCALES:
            raise Invalid(
                "texts", f"unknown language {str(locale)[:8]!r}: use {', '.join(LOCALES)}"
            )
        cleaned = fields.text(f"texts.{locale}", text, TEXT_MAX, single_line=False).strip()
        if not cleaned:
            raise Invalid(f"texts.{locale}", f"texts.{locale} must not be empty")
        texts[locale] = cleaned
    return texts


def parse_time(raw: object) -> datetime | None:
    """`send_at`: ISO 8601 with a time zone, or null for now."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) and len(raw) <= 40 else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Invalid("send_at", "send_at must be an ISO 8601 time with a zone, or null for now")
    return moment


async def parse_reward_voucher(services: Services, raw: object) -> Reward | None:
    """`reward_voucher`: the slug of an active voucher reward of the points mall, or null."""
    if raw is None:
        return None
    slug = fields.slug(raw, "reward_voucher")
    async with services.db.reader() as session:
        reward = await rewards.by_slug(session, slug)
    if reward is None or not reward.active or reward.kind != rewards.VOUCHER:
        raise Invalid("reward_voucher", f"reward_voucher must be an active voucher reward: {slug}")
    return reward


async def preview(services: Services, segment: campaigns.Segment) -> int:
    """How many members the segment reaches now (muted ones included: they count as opted out)."""
    now = services.clock.now()
    async with services.db.reader() as session:
        return await campaigns.segment_count(
            session, segment, now, local_day(now, services.settings.tz)
        )


async def create(
    services: Services, data: Mapping[str, object], progress: Progress | None = None
) -> tuple[dict[str, Any], bool]:
    """Create a campaign (sent at once when its time is now or past); with `dry_run`, only
    count its recipients. Returns (answer, created)."""
    fields.no_unknown(data, FIELDS, "campaign")
    segment = await parse_segment(services, data.get("segment"))
    if data.get("dry_run") is True:
        answer: dict[str, Any] = {
            "segment": segment.to_json(),
            "recipients": await preview(services, segment),
        }
        voucher = await parse_reward_voucher(services, data.get("reward_voucher"))
        if voucher is not None:
            # The stock now: past it, recipients get the message without a voucher.
            answer |= {"reward_voucher": voucher.slug, "vouchers_left": voucher.stock}
        return answer, False
    if data.get("dry_run") not in (None, False):
        raise Invalid("dry_run", "dry_run must be true or false")
    texts = parse_texts(data.get("texts"))
    name = fields.text("name", data.get("name", ""), NAME_MAX) or "campaign"
    limit = services.rules.points.max_adjustment
    reward = fields.whole_number("reward_points", data.get("reward_points", 0), 0, limit)
    voucher = await parse_reward_voucher(services, data.get("reward_voucher"))
    now = services.clock.now()
    send_at = max(parse_time(data.get("send_at")) or now, now)
    async with services.db.transaction() as session:
        campaign = await campaigns.create(
            session,
            name,
            segment,
            texts,
            reward,
            send_at,
            now,
            reward_id=voucher.id if voucher is not None else None,
        )
    if send_at <= now:
        await send(services, campaign.id, progress)
    return await show(services, campaign.id), True


def campaign_json(
    campaign: Campaign, results: dict[str, int], voucher_slug: str | None
) -> dict[str, Any]:
    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": campaign.id,
        "name": campaign.name,
        "state": campaign.state,
        "segment": campaign.segment,
        "texts": campaign.texts,
        "reward_points": campaign.reward_points,
        "reward_voucher": voucher_slug,
        "send_at": when(campaign.send_at),
        "created_at": when(campaign.created_at),
        "started_at": when(campaign.started_at),
        "finished_at": when(campaign.finished_at),
        **results,
    }


def campaign_id(raw: str) -> int:
    """A campaign id from a URL or the command line: NotFound unless it can name one."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise NotFound("unknown campaign")
    return int(raw)


async def show(services: Services, number: int) -> dict[str, Any]:
    async with services.db.reader() as session:
        campaign = await campaigns.get(session, number)
        if campaign is None:
            raise NotFound("unknown campaign")
        results = await campaigns.results(session, [number])
        slugs = await campaigns.reward_slugs(session, [campaign])
    return campaign_json(campaign, results[number], slugs.get(number))


def page_size(raw: str | None) -> int:
    return LIST_DEFAULT if raw is None else fields.query_number("limit", raw, 1, LIST_MAX)


async def listing(services: Services, limit: int) -> list[dict[str, Any]]:
    """The newest campaigns first, with their results."""
    async with services.db.reader() as session:
        found = await campaigns.listing(session, limit)
        results = await campaigns.results(session, [c.id for c in found])
        slugs = await campaigns.reward_slugs(session, found)
    return [campaign_json(c, results[c.id], slugs.get(c.id)) for c in found]
