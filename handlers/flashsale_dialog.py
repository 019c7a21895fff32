"""`/flashsale` step by step: one question per field, with buttons where the answers are few
(numbered options on WeChat and in the terminal). The draft lives in the cache beside the
dialog state, so the next answer may reach any process; each answer is checked at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bot.admin import fields
from bot.admin import flashsales as admin_sales
from bot.admin.errors import Invalid
from bot.core.context import Context, Services
from bot.core.dialogs import DIALOG_TTL, Dialogs
from bot.core.errors import DomainError
from bot.core.i18n import N_, Translator
from bot.core.messages import Button, Inbound, Reply
from bot.core.router import Router
from handlers.communities import name_of
from handlers.flashsale_form import (
    NOW_WORDS,
    allowed_community,
    create,
    may_post,
    number,
    refusal,
    start,
)
from handlers.flashsale_form import text_of as plain
from handlers.tiers import tier_label
from storage import communities

router = Router("flashsale-dialog")

STEP = "flashsale-step"
ANSWER_KEY = "FSD"  # a button's answer: "FSD:<value>"
ANYONE = "-"
MAX_BUTTONS = 6
STEPS = (
    "community",
    "title",
    "price",
    "stock",
    "per_member_limit",
    "starts_at",
    "duration_minutes",
    "min_tier",
)
QUESTIONS = {
    "community": N_("Which community is the flash sale for? Send its slug."),
    "title": N_("What is on sale? Send the title (at most 64 characters)."),
    "price": N_("What does a member pay at the shop? For example 99.50"),
    "stock": N_("How many units are on sale?"),
    "per_member_limit": N_("How many units may one member claim?"),
    "starts_at": N_("When does it start? now, HH:MM or YYYY-MM-DD HH:MM"),
    "duration_minutes": N_("How many minutes does it run?"),
    "min_tier": N_("Which tier at least may claim?"),
}


def _draft_key(services: Services, member_id: int) -> str:
    return f"{services.cache.keys.dialog(member_id)}:flashsale"


async def _draft(services: Services, member_id: int) -> dict[str, Any]:
    stored = await services.cache.get(_draft_key(services, member_id))
    return dict(json.loads(stored)) if stored else {}


async def _save(services: Services, member_id: int, draft: dict[str, Any]) -> None:
    await services.cache.set(_draft_key(services, member_id), json.dumps(draft), DIALOG_TTL)
    await Dialogs(services.cache).ask(member_id, STEP)


async def begin(ctx: Context) -> Reply:
    """The first question, with the communities this member may post in as buttons."""
    await _save(ctx.services, ctx.me.id, {})
    return await _ask(ctx, {})


async def _ask(ctx: Context, draft: dict[str, Any]) -> Reply:
    step = next(s for s in STEPS if s not in draft)
    t = ctx.t
    return Reply(t(QUESTIONS[step]), buttons=await _buttons(ctx, step, t), private=True)


async def _buttons(ctx: Context, step: str, t: Translator) -> tuple[Button, ...]:
    def answer(label: str, value: str) -> Button:
        return Button(label, f"{ANSWER_KEY}:{value}")

    if step == "community":
        async with ctx.services.db.reader() as session:
            found = await communities.listing(session)
        mine = [c for c in found if await may_post(ctx.services, ctx.me.id, c)]
        return tuple(answer(name_of(c, t.locale), c.slug) for c in mine[:MAX_BUTTONS])
    if step == "per_member_limit":
        return tuple(answer(str(n), str(n)) for n in (1, 2, 3))
    if step == "starts_at":
        return (answer(t(N_("Now")), "now"),)
    if step == "duration_minutes":
        return tuple(answer(str(n), str(n)) for n in (30, 60, 120))
    if step == "min_tier":
        tiers = [answer(tier_label(t, r.name), r.name) for r in ctx.services.rules.tiers[1:]]
        return (answer(t(N_("Everyone")), ANYONE), *tiers)
    return ()


@router.action(STEP, menu=ANSWER_KEY)
async def answer_step(msg: Inbound, ctx: Context) -> Reply:
    """One answer: checked, kept, then the next question, or the sale posted after the last."""
    services = ctx.services
    draft = await _draft(services, ctx.me.id)
    step = next((s for s in STEPS if s not in draft), None)
    if step is None or await Dialogs(services.cache).pending(ctx.me.id) != STEP:
        raise DomainError(N_("Send /flashsale to post a flash sale step by step."))
    raw = msg.args.strip()
    if step == "community":
        draft[step] = (await allowed_community(ctx, raw)).slug
    else:
        try:
            draft[step] = _checks()[step](services, raw)
        except Invalid as bad:
            raise refusal(services, bad) from None
    if len(draft) < len(STEPS):
        await _save(services, ctx.me.id, draft)
        return await _ask(ctx, draft)
    await Dialogs(services.cache).done(ctx.me.id)
    await services.cache.delete(_draft_key(services, ctx.me.id))
    if draft["min_tier"] is None:
        del draft["min_tier"]
    if draft["starts_at"] == "now":
        del draft["starts_at"]
    return await create(ctx, draft)


def _title(services: Services, raw: str) -> str:
    title = fields.text("title", raw, admin_sales.TITLE_MAX)
    if not title:
        raise Invalid("title", "title must not be empty")
    return title


def _price(services: Services, raw: str) -> str:
    fields.money("price", plain(raw), admin_sales.PRICE_MAX)
    return plain(raw)


def _bounded(field: str, high: int) -> Callable[[Services, str], int]:
    def check(services: Services, raw: str) -> int:
        return fields.whole_number(field, number(field, raw), 1, high)

    return check


def _start(services: Services, raw: str) -> str:
    """ISO 8601, or "now": the moment the last answer posts it, not this answer's."""
    at = start(services, raw)
    if plain(raw).lower() in NOW_WORDS:
        return "now"
    admin_sales.parse_start(at, services.clock.now())
    return at


def _tier(services: Services, raw: str) -> str | None:
    value = plain(raw).lower()
    if value in (ANYONE, ""):
        return None
    return fields.choice("min_tier", value, tuple(t.name for t in services.rules.tiers))


def _checks() -> dict[str, Callable[[Services, str], Any]]:
    # Built when used: bot.admin.flashsales may still be importing when this module loads.
    return {
        "title": _title,
        "price": _price,
        "stock": _bounded("stock", admin_sales.STOCK_MAX),
        "per_member_limit": _bounded("per_member_limit", admin_sales.LIMIT_MAX),
        "starts_at": _start,
        "duration_minutes": _bounded("duration_minutes", admin_sales.DURATION_MAX),
        "min_tier": _tier,
    }
