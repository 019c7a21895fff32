"""Invites: a member's code and link, and attributing new members (the welcome gift at once).

Attribution happens once per invitee (a unique row), only for members new within the window,
never to oneself. The inviter's reward (at the invitee's first check-in, or after a moderator's
review past the daily cap) is in handlers/invite_rewards.py; what linking accounts does to
invites, in handlers/invite_merge.py.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.errors import DomainError
from bot.core.i18n import N_
from bot.core.messages import Button, Inbound, Reply
from bot.core.router import Router
from bot.settings import Rules
from handlers.durations import wait_text

# Re-exported: the reward and merge halves were here once, and callers may still look here.
from handlers.invite_merge import after_merge
from handlers.invite_rewards import (
    Settled,
    lock_for_checkin,
    review,
    reward_key,
    reward_on_first_checkin,
    tell_inviter,
    welcome_key,
)
from storage import invites, ledger
from storage.members import INVITE_ALPHABET
from storage.models import Member

router = Router("invites")
log = logging.getLogger("memberbot.invites")

REFERRAL_PREFIX = "ref_"
MIN_CODE, MAX_CODE = 4, 12

__all__ = [
    "REFERRAL_PREFIX",
    "Settled",
    "after_merge",
    "attribute",
    "lock_for_checkin",
    "review",
    "reward_key",
    "reward_on_first_checkin",
    "router",
    "tell_inviter",
    "welcome_key",
    "welcome_referral",
]


@router.action(
    "invite",
    commands=("invite",),
    keywords={"zh_CN": ("邀请", "邀请码"), "zh_TW": ("邀請", "邀請碼"), "en": ("invite",)},
    menu="INVITE",
    label=N_("Invite"),
    help=N_("Invite friends, both of you get points: “invite” or /invite"),
    summary=N_("Your invite link: friends and you get points"),
    phrases={
        "zh_CN": ("邀请好友", "我的邀请码"),
        "zh_TW": ("邀請好友", "我的邀請碼"),
        "en": ("invite friends", "invite a friend", "my invite code"),
    },
)
async def invite(msg: Inbound, ctx: Context) -> Reply:
    """`/invite`: my code, link and counts; `/invite CODE` (邀请码 CODE): I was invited."""
    if msg.args:
        return Reply(await attribute(ctx, msg.args, via="code"), private=True)
    return await show_invite(msg, ctx)


async def show_invite(msg: Inbound, ctx: Context) -> Reply:
    services, t, me = ctx.services, ctx.t, ctx.me
    rules = services.rules.invites
    async with services.db.reader() as session:
        counts = await invites.counts(session, me.id)
    links = services.senders.invite_links(msg.channel)
    link = await links.invite_link(me.id, f"{REFERRAL_PREFIX}{me.invite_code}")
    lines = [t(N_("Your invite code: {code}"), code=me.invite_code)]
    buttons: tuple[Button, ...] = ()
    if link is not None and link.kind == "qr":
        lines.append(
            t(N_("Your invite QR code (friends scan it to follow us): {url}"), url=link.url)
        )
    elif link is not None:
        lines.append(t(N_("Your invite link: {url}"), url=link.url))
        pitch = t(
            N_("Join me as a member and get {points} welcome points!"),
            points=rules.invitee_points,
        )
        if share := links.share_url(link.url, pitch):
            buttons = (Button(t(N_("Share my invite link")), url=share),)
    lines.append(
        t(
            N_("New friends can also send “invite {code}” within {days} days of joining."),
            code=me.invite_code,
            days=rules.attribution_days,
        )
    )
    lines.append(
        t(
            N_(
                "They get {invitee} points at once; you get {inviter} points and {growth} growth "
                "when they first check in."
            ),
            invitee=rules.invitee_points,
            inviter=rules.inviter_points,
            growth=services.rules.growth.per_invite,
        )
    )
    lines.append(
        t(
            N_("Invited: {invited} · Rewarded: {rewarded} · Waiting for review: {review}"),
            invited=counts.invited,
            rewarded=counts.rewarded,
            review=counts.review,
        )
    )
    return Reply("\n".join(lines), buttons=buttons, private=True)


async def welcome_referral(msg: Inbound, ctx: Context) -> str | None:
    """A deep link or QR payload `ref_<code>`: attribute, and say what happened (or None)."""
    payload = (msg.referral or "").strip()
    if not payload.lower().startswith(REFERRAL_PREFIX):
        return None
    via = msg.channel if msg.channel in ("telegram", "wechat") else "code"
    try:
        return await attribute(ctx, payload[len(REFERRAL_PREFIX) :], via=via)
    except DomainError as refusal:
        return ctx.t(refusal.message, **refusal.params)


async def attribute(ctx: Context, raw_code: str, *, via: str) -> str:
    """Credit the member as invited by the code's owner; the welcome text, or a DomainError."""
    services, me = ctx.services, ctx.me
    rules = services.rules.invites
    cache = services.cache
    code = invites.normalise_code(raw_code)
    if not plausible_code(code):
        # Not a code at all ("好友", emoji): a slip of the keyboard, so no try is used up.
        raise DomainError(
            N_(
                "An invite code is {min} to {max} letters and digits, like {example}. "
                "Please check it and try again."
            ),
            min=MIN_CODE,
            max=MAX_CODE,
            example=me.invite_code,
        )
    # Counted before looking (a burst of guesses cannot all slip under the limit), typed or
    # not: a hand-made deep link is a guess too.
    tries = await cache.incr(cache.keys.invite_attempts(me.id), ttl=rules.wrong_code_minutes * 60)
    if tries > rules.wrong_code_limit:
        raise DomainError(
            N_("Too many wrong codes. Please try again in {wait}."),
            wait=wait_text(ctx.t, rules.wrong_code_minutes),
        )
    now = services.clock.now()
    async with services.db.transaction() as session:
        inviter = await _inviter(session, code)
        if inviter is None:
            raise DomainError(
                N_("There is no invite code {code}. Please check it and try again."),
                code=code[:MAX_CODE],
            )
        await _check_can_be_invited(session, services.rules, inviter, me, now)
        invite_id = await invites.attribute(session, inviter.id, me.id, via, now)
        if invite_id is None:
            raise DomainError(N_("You have already been invited; an invitation counts once."))
        points = rules.invitee_points
        balance = None
        if points:
            moved = await ledger.earn(
                session,
                me.id,
                points,
                "invite-welcome",
                welcome_key(invite_id),
                now,
                expiry_days=services.rules.points.expiry_days,
            )
            balance = moved.balance
    log.info("invite attributed inviter=%s invitee=%s via=%s", inviter.id, me.id, via)
    if balance is None:
        return ctx.t(N_("Thanks for joining through a friend's invitation!"))
    services.metrics.points_issued.labels("invite").inc(points)
    return ctx.t(
        N_(
            "Welcome gift: +{points} points for joining through a friend's invitation. "
            "Balance: {balance}."
        ),
        points=points,
        balance=balance,
    )


def plausible_code(code: str) -> bool:
    """Letters and digits at all: "好友" or emoji are words or slips, not a guess at a code."""
    return bool(code) and code.isascii()


async def _inviter(session: AsyncSession, code: str) -> Member | None:
    if not MIN_CODE <= len(code) <= MAX_CODE or any(ch not in INVITE_ALPHABET for ch in code):
        return None
    return await invites.member_by_code(session, code)


async def _check_can_be_invited(
    session: AsyncSession, rules: Rules, inviter: Member, me: Member, now: datetime
) -> None:
    if inviter.id == me.id:
        raise DomainError(N_("That is your own invite code: share it with friends instead."))
    window = timedelta(days=rules.invites.attribution_days)
    if me.created_at < now - window:
        raise DomainError(
            N_("Invite codes count only within {days} days of joining, and you joined earlier."),
            days=rules.invites.attribution_days,
        )
    if inviter.created_at > me.created_at:
        raise DomainError(N_("That code's owner joined after you, so it cannot count for you."))
    if await invites.of_invitee(session, me.id) is not None:
        raise DomainError(N_("You have already been invited; an invitation counts once."))
