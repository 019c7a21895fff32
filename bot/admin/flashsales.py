"""Operator actions on flash sales and their claims, shared by the API, the CLI and the
moderators' `/flashsale`: create (checked field by field), list, read, cancel; the till's
claim check and use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.admin import fields
from bot.admin.errors import Conflict, Invalid, NotFound
from bot.core.context import Services
from handlers.flashsale_engine import sale_closed
from handlers.flashsale_posts import cancelled_edit, start_sale
from storage import communities, flash_claims, flashsales
from storage.flash_stock import fast_path
from storage.models import FlashClaim, FlashSale

SALE_FIELDS = (
    "community",
    "title",
    "price",
    "stock",
    "per_member_limit",
    "starts_at",
    "duration_minutes",
    "min_tier",
)
TITLE_MAX = 64
STOCK_MAX = 1_000_000
LIMIT_MAX = 100
PRICE_MAX = 10_000_000
DURATION_MAX = 7 * 24 * 60  # minutes: a week
PAST_GRACE = timedelta(minutes=1)  # a start this far back is "now" typed a little late


@dataclass(frozen=True)
class SaleRequest:
    community_id: int
    title: str
    price: Decimal
    stock: int
    per_member_limit: int
    starts_at: datetime
    duration_minutes: int
    min_tier: str | None


def parse_start(raw: object, now: datetime) -> datetime:
    """An ISO 8601 moment with its zone, at most a minute in the past; None: now."""
    if raw is None:
        return now
    message = "starts_at must be an ISO 8601 time with a zone, not in the past"
    if not isinstance(raw, str) or len(raw) > 40:
        raise Invalid("starts_at", message)
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid("starts_at", message) from None
    if at.tzinfo is None:
        raise Invalid("starts_at", message)
    return check_start(at, now)


def check_start(at: datetime, now: datetime) -> datetime:
    if at < now - PAST_GRACE:
        raise Invalid("starts_at", "starts_at must not be more than a minute in the past")
    return max(at, now)


async def parse_sale(services: Services, data: Mapping[str, object]) -> SaleRequest:
    """The sale in `data`; `Invalid` names the first field that cannot be."""
    fields.no_unknown(data, SALE_FIELDS, "flash sale")
    slug = data.get("community")
    found = None
    if isinstance(slug, str) and fields.SLUG.fullmatch(slug):
        async with services.db.reader() as session:
            found = await communities.by_slug(session, slug)
    if found is None:
        raise Invalid("community", "community must be the slug of an existing community")
    title = fields.text("title", data.get("title"), TITLE_MAX)
    if not title:
        raise Invalid("title", f"title must be text of 1 to {TITLE_MAX} characters")
    price = fields.money("price", data.get("price"), PRICE_MAX)
    stock = fields.whole_number("stock", data.get("stock"), 1, STOCK_MAX)
    limit = fields.whole_number("per_member_limit", data.get("per_member_limit", 1), 1, LIMIT_MAX)
    starts_at = parse_start(data.get("starts_at"), services.clock.now())
    duration = fields.whole_number(
        "duration_minutes", data.get("duration_minutes"), 1, DURATION_MAX
    )
    tier = data.get("min_tier")
    if tier is not None:
        tier = fields.choice("min_tier", tier, tuple(t.name for t in services.rules.tiers))
    return SaleRequest(found.id, title, price, stock, limit, starts_at, duration, tier)


async def create_sale(
    services: Services, data: Mapping[str, object], created_by: int | None = None
) -> dict[str, Any]:
    """Check and store the sale; one starting now goes live (and is announced) at once."""
    req = await parse_sale(services, data)
    sale = await flashsales.create(
        services.db,
        flashsales.NewSale(
            req.community_id,
            req.title,
            req.price,
            req.stock,
            req.per_member_limit,
            req.min_tier,
            req.starts_at,
            req.starts_at + timedelta(minutes=req.duration_minutes),
            created_by,
        ),
        services.clock.now(),
    )
    if sale.starts_at <= services.clock.now() and await start_sale(services, sale.id):
        services.pushes.wake()
    return await get_sale(services, sale.code)


def sale_json(sale: FlashSale, community: str) -> dict[str, Any]:
    return {
        "code": sale.code,
        "community": community,
        "title": sale.title,
        "price": f"{sale.price:.2f}",
        "stock": sale.stock,
        "claimed": sale.claimed,
        "remaining": sale.stock - sale.claimed,
        "per_member_limit": sale.per_member_limit,
        "min_tier": sale.min_tier,
        "starts_at": sale.starts_at.isoformat(),
        "ends_at": sale.ends_at.isoformat(),
        "state": sale.state,
    }


def claim_json(claim: FlashClaim, sale_code: str) -> dict[str, Any]:
    return {
        "claim_code": claim.claim_code,
        "sale": sale_code,
        "member_id": claim.member_id,
        "claimed_at": claim.claimed_at.isoformat(),
        "used": claim.used_at is not None,
    }


async def _slugs(services: Services) -> dict[int, str]:
    async with services.db.reader() as session:
        return {c.id: c.slug for c in await communities.listing(session, active_only=False)}


async def list_sales(services: Services, state: str | None = None) -> list[dict[str, Any]]:
    if state is not None:
        fields.choice("state", state, flashsales.STATES)
    slugs = await _slugs(services)
    async with services.db.reader() as session:
        found = await flashsales.listing(session, state)
    return [sale_json(s, slugs.get(s.community_id, "")) for s in found]


async def _find(services: Services, code: str) -> FlashSale:
    async with services.db.reader() as session:
        found = await flashsales.by_code(session, code)
    if found is None:
        raise NotFound(f"unknown flash sale {code[:10]}")
    return found


async def get_sale(services: Services, code: str) -> dict[str, Any]:
    sale = await _find(services, code)
    return sale_json(sale, (await _slugs(services)).get(sale.community_id, ""))


async def sale_claims(services: Services, code: str) -> list[dict[str, Any]]:
    sale = await _find(services, code)
    async with services.db.reader() as session:
        return [claim_json(c, sale.code) for c in await flash_claims.claims(session, sale.id)]


async def cancel_sale(services: Services, code: str) -> dict[str, Any]:
    """Stop a sale that has not ended; claims won stay valid at the till."""
    sale = await _find(services, code)
    async with services.db.transaction() as session:
        cancelled = await flashsales.cancel(session, sale.id, services.clock.now())
        if cancelled:
            await cancelled_edit(session, services, sale.id, services.clock.now())
    if not cancelled:
        raise Conflict(f"flash sale {sale.code} is {sale.state} already")
    services.pushes.wake()
    sale_closed(services, sale.code)
    fast = fast_path(services.cache)
    if fast is not None:
        await fast.close(sale.id)
    return await get_sale(services, code)


async def get_claim(services: Services, claim_code: str) -> dict[str, Any]:
    async with services.db.reader() as session:
        found = await flash_claims.claim_by_code(session, claim_code)
    if found is None:
        raise NotFound(f"unknown claim {claim_code[:12]}")
    return claim_json(*found)


async def use_claim(services: Services, claim_code: str) -> dict[str, Any]:
    """The till takes the claim: once; a second use is a conflict."""
    async with services.db.transaction() as session:
        found = await flash_claims.claim_by_code(session, claim_code)
        if found is None:
            raise NotFound(f"unknown claim {claim_code[:12]}")
        claim, sale_code = found
        if not await flash_claims.use_claim(session, claim.id, services.clock.now()):
            raise Conflict(
                f"claim {claim.claim_code} was used already", **claim_json(claim, sale_code)
            )
        await session.refresh(claim)
        return claim_json(claim, sale_code)
