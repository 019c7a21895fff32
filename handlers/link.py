"""Linking accounts: a 6-digit code shown in one app, typed in the other, merges the two members."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context, Services
from bot.core.errors import DomainError
from bot.core.i18n import N_
from bot.core.messages import Inbound, Reply
from bot.core.router import LINK_CODE, Router
from handlers.durations import wait_text
from handlers.help import unknown
from handlers.invite_merge import after_merge
from handlers.tiers import tier_label
from storage import checkins, invites, ledger, links, members

router = Router("link")

CODE = re.compile(r"^[0-9]{6}$")


@router.action(
    "link",
    commands=("link",),
    keywords={"zh_CN": ("绑定",), "zh_TW": ("綁定",), "en": ("link",)},
    menu="LINK",
    label=N_("Link accounts"),
    help=N_("Link your WeChat and Telegram accounts: /link"),
    summary=N_("Link your WeChat and Telegram accounts"),
    phrases={
        "zh_CN": ("绑定账号", "绑定帐号", "账号绑定"),
        "zh_TW": ("綁定帳號", "綁定賬號", "帳號綁定"),
        "en": ("link account", "link accounts", "link my accounts"),
    },
)
async def link(msg: Inbound, ctx: Context) -> Reply:
    # NFKC: Chinese input methods in full-width mode send "１２３４５６" for 123456.
    code = unicodedata.normalize("NFKC", msg.args).strip()
    if not code:
        return await issue_code(msg, ctx)
    if not CODE.match(code):
        raise DomainError(N_("A link code has 6 digits. Send /link in your other app to get one."))
    return await redeem(msg, ctx, code)


@router.action(LINK_CODE)
async def bare_number(msg: Inbound, ctx: Context) -> Reply:
    """A bare 6-digit number is a link code only while a link is pending (some code waits);
    otherwise it is just a number (an order, a price), not a wrong code using up a try."""
    async with ctx.services.db.reader() as session:
        waiting = await links.any_waiting(session, ctx.services.clock.now())
    if not waiting:
        return await unknown(msg, ctx)
    return await redeem(msg, ctx, unicodedata.normalize("NFKC", msg.args).strip())


async def issue_code(msg: Inbound, ctx: Context) -> Reply:
    services = ctx.services
    minutes = services.rules.limits.link_code_minutes
    async with services.db.transaction() as session:
        issued = await links.issue(session, ctx.me.id, msg.channel, services.clock.now(), minutes)
    return Reply(
        ctx.t(
            N_(
                "Your link code is {code}. Within {minutes} minutes, send it to me from your "
                "other app (WeChat or Telegram) to link the two accounts."
            ),
            code=issued.code,
            minutes=minutes,
        ),
        private=True,
    )


async def redeem(msg: Inbound, ctx: Context, code: str) -> Reply:
    """Redeem another app's code; tries are counted so codes cannot be brute-forced.

    The try is counted before the code is looked at (one atomic increment), so a burst of
    guesses sent at once gets no more tries than guesses sent one by one.
    """
    services, t, me = ctx.services, ctx.t, ctx.me
    rules, cache = services.rules, services.cache
    ttl = rules.limits.link_code_minutes * 60
    if await cache.incr(cache.keys.link_attempts(me.id), ttl=ttl) > rules.limits.link_attempts:
        raise DomainError(
            N_("Too many wrong codes. Please try again in {wait}."),
            wait=wait_text(t, rules.limits.link_code_minutes),
        )
    now = services.clock.now()
    outcome: tuple[int, str] | None = None
    async with services.db.transaction() as session:
        found = await links.peek(session, code)
        usable = found is not None and found.expires_at > now
        if found is not None and usable and found.member_id == me.id:
            raise DomainError(N_("That is your own code: send it from your other app."))
        if found is not None and usable and found.channel == msg.channel:
            raise DomainError(N_("Send this code from your other app, not from this one."))
        # take() deletes the row: of two people racing with one code, only one gets it.
        if found is not None and usable and await links.take(session, code) is not None:
            outcome = await _merge(session, services, found.member_id, me.id, now)
    if outcome is None:
        raise DomainError(
            N_("That code is wrong or has expired. Send /link in your other app for a new one.")
        )
    balance, tier = outcome
    ctx.is_new = False  # a member already, who had the privacy line in the other app
    return Reply(
        t(
            N_("Linked! Your accounts are now one member: {points} points, tier {tier}."),
            points=balance,
            tier=tier_label(t, tier),
        ),
        private=True,
    )


async def _merge(
    session: AsyncSession, services: Services, a: int, b: int, now: datetime
) -> tuple[int, str]:
    """Merge two members, the older surviving; returns the survivor's balance and tier.

    Check-in days both halves have count once: the dropped half's reward for such a day is
    reversed and its growth taken back, so linking never earns anything by itself.
    """
    rules = services.rules
    survivor_id, loser_id = sorted((a, b))
    await invites.lock_for_merge(session, survivor_id, loser_id)
    merged = await members.merge(session, survivor_id, loser_id)
    await after_merge(session, services, survivor_id, loser_id, now)
    for day, points in merged.duplicate_days:
        await ledger.reverse(
            session,
            survivor_id,
            points,
            "link-merge",
            f"link-merge:{loser_id}:{day.isoformat()}",
            now,
            lot_key=f"checkin:{loser_id}:{day.isoformat()}",
        )
    growth_back = rules.checkin.growth * len(merged.duplicate_days)
    growth, _ = await members.add_growth(session, survivor_id, -growth_back)
    await checkins.recount_streaks(session, survivor_id)
    candidates = (merged.survivor.tier, merged.loser_tier, rules.tier_for_growth(growth).name)
    tier = max(candidates, key=rules.tier_rank)
    await members.set_tier(session, survivor_id, tier)
    return await ledger.balance_of(session, survivor_id), tier
