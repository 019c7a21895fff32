"""What both ways of posting a flash sale in chat share: who may, how typed values become the
API's fields, the refusals in words, and the answer once it is posted."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

from bot.admin import flashsales as admin_sales
from bot.admin.errors import Invalid
from bot.core.context import Context, Services
from bot.core.errors import DomainError
from bot.core.i18n import N_
from bot.core.messages import Reply
from storage import communities, roles
from storage.models import Community

_LOCAL_TIME = re.compile(r"^(?:(\d{4})-(\d{2})-(\d{2}) )?(\d{1,2}):(\d{2})$")
NOW_WORDS = ("now", "现在", "現在", "")

# The same refusals as the API's 422s, in the member's words.
FIELD_WORDS = {
    "community": N_("There is no such community. Send “communities” to see the list."),
    "title": N_("The title must be 1 to 64 characters."),
    "price": N_("The price must be a positive amount such as 99.50."),
    "stock": N_("The stock must be a whole number from 1 to 1000000."),
    "per_member_limit": N_("The limit per member must be a whole number from 1 to 100."),
    "starts_at": N_(
        "The start must be now, HH:MM or YYYY-MM-DD HH:MM (local time), "
        "not more than a minute in the past."
    ),
    "duration_minutes": N_("The duration must be 1 to 10080 minutes (7 days)."),
    "min_tier": N_("The tier must be one of: {tiers}."),
}


async def may_post(services: Services, member_id: int, community: Community) -> bool:
    """Moderators of that community, staff and admins."""
    async with services.db.reader() as session:
        return await roles.has(
            session, member_id, roles.MODERATOR, community.id
        ) or await roles.has(session, member_id, roles.STAFF)


async def allowed_community(ctx: Context, raw: str) -> Community:
    """The community named, if the member may post there; a polite DomainError otherwise."""
    slug = unicodedata.normalize("NFKC", raw).strip().lower()
    async with ctx.services.db.reader() as session:
        community = await communities.by_slug(session, slug) if len(slug) <= 32 else None
    if community is None:
        raise DomainError(FIELD_WORDS["community"])
    if not await may_post(ctx.services, ctx.me.id, community):
        raise DomainError(
            N_("Sorry, only moderators of {slug} can post flash sales there."), slug=community.slug
        )
    return community


def refusal(services: Services, bad: Invalid) -> DomainError:
    tiers = ", ".join(tier.name for tier in services.rules.tiers)
    return DomainError(FIELD_WORDS.get(bad.field, FIELD_WORDS["title"]), tiers=tiers)


async def create(ctx: Context, data: dict[str, Any]) -> Reply:
    """Post the sale (checked as the API checks it); the answer names its code and times."""
    services, t = ctx.services, ctx.t
    try:
        sale = await admin_sales.create_sale(services, data, created_by=ctx.me.id)
    except Invalid as bad:
        raise refusal(services, bad) from None
    return Reply(
        t(
            N_(
                "Flash sale {code} posted: {title}, {stock} at {price}, limit {limit} per "
                "member, from {start} to {end}. Members claim with “claim {code}”."
            ),
            code=sale["code"],
            title=sale["title"],
            stock=sale["stock"],
            price=sale["price"],
            limit=sale["per_member_limit"],
            start=_local(services, sale["starts_at"]),
            end=_local(services, sale["ends_at"]),
        ),
        private=True,
    )


def _local(services: Services, iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(services.settings.tz).strftime("%Y-%m-%d %H:%M")


def one_line(services: Services, slug: str, parts: list[str]) -> dict[str, Any]:
    """The one-line form as the API's fields (numbers as numbers, the start as ISO 8601)."""
    data: dict[str, Any] = {
        "community": slug,
        "title": parts[1],
        "price": text_of(parts[2]),
        "stock": number("stock", parts[3]),
        "per_member_limit": number("per_member_limit", parts[4]),
        "starts_at": start(services, parts[5]),
        "duration_minutes": number("duration_minutes", parts[6]),
    }
    if len(parts) == 8 and parts[7]:
        data["min_tier"] = parts[7].lower()
    return data


def text_of(raw: str) -> str:
    """Full-width digits and points typed on a phone become ASCII."""
    return unicodedata.normalize("NFKC", raw).strip()


def number(field: str, raw: str) -> int:
    text = text_of(raw)
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise Invalid(field, f"{field} must be a whole number")
    return int(text)


def start(services: Services, raw: str) -> str:
    """now, HH:MM (today) or YYYY-MM-DD HH:MM, in the shop's time zone, as ISO 8601."""
    text = text_of(raw).lower()
    now = services.clock.now()
    if text in NOW_WORDS:
        return now.isoformat()
    found = _LOCAL_TIME.match(text)
    if found is None:
        raise Invalid("starts_at", "starts_at must be now, HH:MM or YYYY-MM-DD HH:MM")
    year, month, day, hour, minute = found.groups()
    today = now.astimezone(services.settings.tz)
    try:
        at = today.replace(
            year=int(year or today.year),
            month=int(month or today.month),
            day=int(day or today.day),
            hour=int(hour),
            minute=int(minute),
            second=0,
            microsecond=0,
        )
    except ValueError:
        raise Invalid("starts_at", "starts_at is not a real date and time") from None
    return at.isoformat()
