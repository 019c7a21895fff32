"""Operator actions on the points mall: rewards (vouchers and lotteries) and the till's
voucher calls (check, use once, cancel with points and stock given back)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.admin import fields
from bot.admin.communities import _names
from bot.admin.errors import Conflict, Invalid, NotFound
from bot.admin.members import find
from bot.core.context import Services
from storage import rewards, vouchers
from storage.db import once_more_if_needed
from storage.models import Reward, RewardPrize, Voucher

COST_MAX, STOCK_MAX, LIMIT_MAX, DAYS_MAX, WEIGHT_MAX, PRIZES_MAX = (
    10**9,
    10**9,
    10**6,
    3650,
    10**6,
    50,
)
READ_ONLY = ("slug", "redeemed")
CODE_MAX = 16


def _optional_number(field: str, raw: object, low: int, high: int) -> int | None:
    return None if raw is None else fields.whole_number(field, raw, low, high)


def _active(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise Invalid("active", "active must be true or false")
    return raw


def _prizes(raw: object) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= PRIZES_MAX:
        raise Invalid("prizes", f"prizes must be a list of 1 to {PRIZES_MAX} prizes")
    parsed: list[dict[str, Any]] = []
    for item in raw:
        if not isinstance(item, dict):
            raise Invalid("prizes", "each prize must be an object with slug, names, weight, stock")
        fields.no_unknown(item, ("slug", "names", "weight", "stock", "won"), "prize")
        if "weight" not in item or "names" not in item:
            raise Invalid("prizes", "each prize needs slug, names and weight")
        parsed.append(
            {
                "slug": fields.slug(item.get("slug"), "prizes.slug"),
                "names": _names(item["names"]),
                "weight": fields.whole_number("prizes.weight", item["weight"], 1, WEIGHT_MAX),
                "stock": _optional_number("prizes.stock", item.get("stock"), 0, STOCK_MAX),
            }
        )
    if len({p["slug"] for p in parsed}) != len(parsed):
        raise Invalid("prizes", "prize slugs must differ")
    return parsed


def parse_reward(data: Mapping[str, object], tiers: tuple[str, ...]) -> dict[str, Any]:
    """The reward fields given in `data`, cleaned and checked; read-only ones left out."""
    fields.no_unknown(data, (*rewards.FIELDS, "prizes", *READ_ONLY), "reward")
    checks: dict[str, Any] = {
        "kind": lambda v: fields.choice("kind", v, (rewards.VOUCHER, rewards.LOTTERY)),
        "names": _names,
        "cost": lambda v: fields.whole_number("cost", v, 1, COST_MAX),
        "stock": lambda v: _optional_number("stock", v, 0, STOCK_MAX),
        "per_member_limit": lambda v: _optional_number("per_member_limit", v, 1, LIMIT_MAX),
        "min_tier": lambda v: fields.choice("min_tier", v, tiers),
        "valid_days": lambda v: fields.whole_number("valid_days", v, 1, DAYS_MAX),
        "active": _active,
        "prizes": _prizes,
    }
    return {name: check(data[name]) for name, check in checks.items() if name in data}


def prize_json(prize: RewardPrize) -> dict[str, Any]:
    return {
        "slug": prize.slug,
        "names": dict(prize.names or {}),
        "weight": prize.weight,
        "stock": prize.stock,
        "won": prize.won,
    }


def reward_json(reward: Reward, prizes: list[RewardPrize] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "slug": reward.slug,
        "kind": reward.kind,
        "names": dict(reward.names or {}),
        "cost": reward.cost,
        "stock": reward.stock,
        "redeemed": reward.redeemed,
        "per_member_limit": reward.per_member_limit,
        "min_tier": reward.min_tier,
        "valid_days": reward.valid_days,
        "active": reward.active,
    }
    if reward.kind == rewards.LOTTERY:
        found["prizes"] = [prize_json(p) for p in prizes or []]
    return found


def voucher_json(voucher: Voucher, reward: Reward, now: datetime) -> dict[str, Any]:
    return {
        "code": voucher.code,
        "reward": reward.slug,
        "member_id": voucher.member_id,
        "state": vouchers.state_at(voucher, now),
        "expires_at": voucher.expires_at.isoformat(),
        "cost": voucher.cost,
        "issued_at": voucher.issued_at.isoformat(),
        "used_at": voucher.used_at.isoformat() if voucher.used_at else None,
    }


async def list_rewards(services: Services) -> list[dict[str, Any]]:
    """Every reward, retired ones too (an operator may bring one back)."""
    async with services.db.reader() as session:
        found = await rewards.listing(session, active_only=False)
        prizes = await rewards.prizes_of(session, [r.id for r in found])
        return [reward_json(r, prizes[r.id]) for r in found]


async def get_reward(services: Services, slug: str) -> dict[str, Any]:
    async with services.db.reader() as session:
        found = await rewards.by_slug(session, slug) if fields.SLUG.fullmatch(slug) else None
        if found is None:
            raise NotFound(f"unknown reward {slug[:32]}")
        return reward_json(found, (await rewards.prizes_of(session, [found.id]))[found.id])


async def save_reward(
    services: Services, slug: str, data: Mapping[str, object], *, exists: bool | None = None
) -> tuple[dict[str, Any], bool]:
    """Create the reward or change the fields given; True when created.

    `exists` True: only an update (NotFound otherwise); False: only a creation (Conflict)."""
    fields.slug(slug)
    values = parse_reward(data, tuple(t.name for t in services.rules.tiers))
    if "slug" in data and data["slug"] != slug:
        raise Invalid("slug", "slug in the body must be the one in the path")
    prizes = values.pop("prizes", None)
    try:
        return await _save_once(services, slug, values, prizes, exists)
    except IntegrityError:
        # Created by another request between our read and our write: once more sees it.
        try:
            return await _save_once(services, slug, values, prizes, exists)
        except IntegrityError:
            raise Conflict(f"reward {slug} was changed at the same time; try again") from None


async def _save_once(
    services: Services,
    slug: str,
    values: dict[str, Any],
    prizes: list[dict[str, Any]] | None,
    exists: bool | None,
) -> tuple[dict[str, Any], bool]:
    async with services.db.transaction() as session:
        found = await rewards.by_slug(session, slug)
        if found is None and exists is True:
            raise NotFound(f"unknown reward {slug}")
        if found is not None and exists is False:
            raise Conflict(f"reward {slug} already exists")
        if found is None:
            for needed in ("names", "cost"):
                if needed not in values:
                    raise Invalid(needed, f"{needed} is required to create a reward")
            values.setdefault("min_tier", services.rules.tiers[0].name)
        kind = values.get("kind", found.kind if found else rewards.VOUCHER)
        if kind == rewards.LOTTERY and found is None and prizes is None:
            raise Invalid("prizes", "prizes is required to create a lottery")
        if kind != rewards.LOTTERY and prizes is not None:
            raise Invalid("prizes", "only a reward of kind lottery has prizes")
        saved, created = await rewards.upsert(session, slug, values, services.clock.now(), prizes)
        listed = (await rewards.prizes_of(session, [saved.id]))[saved.id]
        return reward_json(saved, listed), created


async def retire_reward(services: Services, slug: str) -> dict[str, Any]:
    """Take the reward out of the mall; vouchers already issued stay valid."""
    async with services.db.transaction() as session:
        found = await rewards.by_slug(session, slug) if fields.SLUG.fullmatch(slug) else None
        if found is None:
            raise NotFound(f"unknown reward {slug[:32]}")
        saved, _ = await rewards.upsert(session, slug, {"active": False}, services.clock.now())
        return reward_json(saved, (await rewards.prizes_of(session, [saved.id]))[saved.id])


def _code(raw: str) -> str:
    code = raw.strip().upper()
    if not 1 <= len(code) <= CODE_MAX or not code.isalnum() or not code.isascii():
        raise NotFound("unknown voucher")
    return code


async def _with_reward(services: Services, voucher: Voucher) -> dict[str, Any]:
    async with services.db.reader() as session:
        reward = await session.get(Reward, voucher.reward_id)
    assert reward is not None
    return voucher_json(voucher, reward, services.clock.now())


async def get_voucher(services: Services, code: str) -> dict[str, Any]:
    async with services.db.reader() as session:
        found = await vouchers.by_code(session, _code(code))
    if found is None:
        raise NotFound("unknown voucher")
    return await _with_reward(services, found)


def _refused(exc: vouchers.VoucherState) -> Conflict:
    return Conflict(f"voucher {exc.code} is {exc.state}", state=exc.state)


async def use_voucher(services: Services, code: str) -> dict[str, Any]:
    """The till takes the voucher: once; 409 with the state if used, expired or cancelled."""
    try:
        async with services.db.transaction() as session:
            used = await vouchers.use(session, _code(code), services.clock.now())
    except vouchers.VoucherState as exc:
        raise _refused(exc) from None
    if used is None:
        raise NotFound("unknown voucher")
    return await _with_reward(services, used)


async def cancel_voucher(services: Services, code: str) -> dict[str, Any]:
    """Undo a redemption: the points come back to the member, the unit back to stock."""
    wanted = _code(code)

    async def once() -> Voucher | None:
        async with services.db.transaction() as session:
            return await vouchers.cancel(
                session, wanted, services.clock.now(), expiry_days=services.rules.points.expiry_days
            )

    try:
        cancelled = await once_more_if_needed(once)
    except vouchers.VoucherState as exc:
        raise _refused(exc) from None
    if cancelled is None:
        raise NotFound("unknown voucher")
    return await _with_reward(services, cancelled)


async def member_vouchers(
    services: Services, channel: str, external_id: str
) -> list[dict[str, Any]]:
    """The member's vouchers, newest first."""
    member = await find(services, channel, external_id)
    now = services.clock.now()
    async with services.db.reader() as session:
        found = await vouchers.of_member(session, member.id, limit=500)
        by_id = {r.id: r for r in await rewards.listing(session, active_only=False)}
    return [voucher_json(v, by_id[v.reward_id], now) for v in found]
