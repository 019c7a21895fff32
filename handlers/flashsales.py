"""Flash sales in chat: members claim (button, /claim CODE, 抢 CODE, the deep link), moderators
post (`/flashsale` one line); the every-minute hook starts and ends sales.

The rules are in handlers/flashsale_engine.py (claims) and flashsale_posts.py (start, end).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from bot.admin import flashsales as admin_sales
from bot.admin.errors import Invalid
from bot.core.context import Context, Services
from bot.core.errors import DomainError
from bot.core.i18n import N_
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from handlers.flashsale_engine import claim_sale, codes_held
from handlers.flashsale_posts import run_due
from storage import communities, roles

router = Router("flashsales")

LINK_PREFIX = "fs_"  # Telegram deep link ?start=fs_<code>: claims on arrival
_LOCAL_TIME = re.compile(r"^(?:(\d{4})-(\d{2})-(\d{2}) )?(\d{1,2}):(\d{2})$")

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
USAGE = N_(
    "Post a flash sale in one line:\n"
    "/flashsale SLUG | TITLE | PRICE | STOCK | LIMIT | START | MINUTES [| TIER]\n"
    "START is now, HH:MM or YYYY-MM-DD HH:MM. Example:\n"
    "/flashsale coffee | Geisha beans 200g | 99.50 | 20 | 1 | now | 30"
)


@router.action(
    "claim",
    commands=("claim",),
    keywords={"zh_CN": ("抢",), "zh_TW": ("搶",), "en": ("claim",)},
    menu="FS",  # the announcement's button: "fs:<code>"
    help=N_("Claim a flash sale: “claim CODE” or /claim CODE"),
)
async def claim(msg: Inbound, ctx: Context) -> Reply:
    code = msg.args.strip()
    if not code:
        raise DomainError(N_("Which sale? Send “claim CODE” with the code of the flash sale."))
    return await _claimed(ctx, code)


async def _claimed(ctx: Context, code: str) -> Reply:
    """The claim's answer; a refusal too is private, and is the button's toast."""
    try:
        return await claim_sale(ctx.services, ctx.me, code, ctx.t)
    except DomainError as refused:
        text = ctx.t(refused.message, **refused.params)
        return Reply(text, private=True, toast=text)


async def claim_from_link(msg: Inbound, ctx: Context) -> Reply | None:
    """`/start fs_<code>`: the member was sent to the private chat to claim: the codes they
    won already (the button claimed, the DM could not tell them), else a claim; None when
    the link is no flash-sale link."""
    payload = (msg.referral or "").strip()
    if not payload.lower().startswith(LINK_PREFIX):
        return None
    code = payload[len(LINK_PREFIX) :]
    held = await codes_held(ctx.services, ctx.me, code, ctx.t)
    return held if held is not None else await _claimed(ctx, code)


@router.action(
    "flashsale",
    commands=("flashsale",),
    keywords={"zh_CN": ("发布抢购",), "zh_TW": ("發佈搶購",), "en": ("flashsale",)},
)
async def post_sale(msg: Inbound, ctx: Context) -> Reply:
    """A moderator of the community (or staff, an admin) posts a sale in one line."""
    t, services = ctx.t, ctx.services
    parts = [p.strip() for p in msg.args.split("|")]
    if len(parts) not in (7, 8):
        return Reply(t(USAGE), private=True)
    slug = unicodedata.normalize("NFKC", parts[0]).lower()
    async with services.db.reader() as session:
        community = await communities.by_slug(session, slug) if len(slug) <= 32 else None
        allowed = community is not None and (
            await roles.has(session, ctx.me.id, roles.MODERATOR, community.id)
            or await roles.has(session, ctx.me.id, roles.STAFF)
        )
    if community is None:
        raise DomainError(FIELD_WORDS["community"])
    if not allowed:
        raise DomainError(
            N_("Sorry, only moderators of {slug} can post flash sales there."), slug=community.slug
        )
    try:
        data = _sale_data(services, community.slug, parts)
        sale = await admin_sales.create_sale(services, data, created_by=ctx.me.id)
    except Invalid as bad:
        tiers = ", ".join(tier.name for tier in services.rules.tiers)
        raise DomainError(FIELD_WORDS.get(bad.field, USAGE), tiers=tiers) from None
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


def _sale_data(services: Services, slug: str, parts: list[str]) -> dict[str, object]:
    """The one-line form as the API's fields (numbers as numbers, the start as ISO 8601)."""
    data: dict[str, object] = {
        "community": slug,
        "title": parts[1],
        "price": unicodedata.normalize("NFKC", parts[2]),
        "stock": _number("stock", parts[3]),
        "per_member_limit": _number("per_member_limit", parts[4]),
        "starts_at": _start(services, parts[5]),
        "duration_minutes": _number("duration_minutes", parts[6]),
    }
    if len(parts) == 8 and parts[7]:
        data["min_tier"] = parts[7].lower()
    return data


def _number(field: str, raw: str) -> int:
    text = unicodedata.normalize("NFKC", raw)
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise Invalid(field, f"{field} must be a whole number")
    return int(text)


def _start(services: Services, raw: str) -> str:
    """now, HH:MM (today) or YYYY-MM-DD HH:MM, in the shop's time zone, as ISO 8601."""
    text = unicodedata.normalize("NFKC", raw).strip().lower()
    now = services.clock.now()
    if text in ("now", "现在", "現在", ""):
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


async def hook(services: Services) -> int:
    """Every minute: start the sales whose time came, end those past their end or sold out."""
    return await run_due(services)
