"""Invites: a member's code and link, attributing new members, and rewarding both sides.

Attribution happens once per invitee (a unique row), only for members new within the window,
never to oneself; the invitee's welcome points come at once, the inviter's reward when the
invitee first checks in, or, past the inviter's daily cap, after a moderator's review.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import local_day
from bot.core.context import Context, Services
from bot.core.errors import DomainError
from bot.core.i18n import N_, Translator
from bot.core.messages import Button, Inbound, Reply
from bot.core.router import Router
from bot.settings import Rules
from handlers.tiers import TierChange, apply_growth, upgrade_text
from storage import invites, ledger
from storage.members import INVITE_ALPHABET
from storage.models import Invite, LedgerEntry, Member

router = Router("invites")
log = logging.getLogger("memberbot.invites")

REFERRAL_PREFIX = "ref_"


# Keyed by the invite, not the invitee: linking accounts moves an invite to another member id,
# and voiding it later must still find what it paid.
def welcome_key(invite_id: int) -> str:
    return f"invite-welcome:{invite_id}"


def reward_key(invite_id: int) -> str:
    return f"invite-reward:{invite_id}"


@router.action(
    "invite",
    commands=("invite",),
    keywords={"zh_CN": ("邀请", "邀请码"), "zh_TW": ("邀請", "邀請碼"), "en": ("invite",)},
    menu="INVITE",
    label=N_("Invite"),
    help=N_("Invite friends, both of you get points: “invite” or /invite"),
    summary=N_("Your invite link: friends and you get points"),
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
    # Counted before looking (a burst of guesses cannot all slip under the limit), typed or
    # not: a hand-made deep link is a guess too.
    tries = await cache.incr(cache.keys.invite_attempts(me.id), ttl=rules.wrong_code_minutes * 60)
    if tries > rules.wrong_code_limit:
        raise DomainError(N_("Too many wrong codes. Please try again in a few minutes."))
    now = services.clock.now()
    async with services.db.transaction() as session:
        inviter = await _inviter(session, code)
        if inviter is None:
            raise DomainError(
                N_("There is no invite code {code}. Please check it and try again."),
                code=code[:12] or "-",
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


async def _inviter(session: AsyncSession, code: str) -> Member | None:
    if not 4 <= len(code) <= 12 or any(ch not in INVITE_ALPHABET for ch in code):
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


@dataclass(frozen=True)
class Settled:
    """An invite reward decided inside a transaction; told to the inviter after it commits."""

    invite_id: int
    inviter_id: int
    status: str
    points: int = 0
    balance: int = 0
    tier: TierChange | None = None
    by_order: bool = False  # settled by the invitee's first order (invites.reward_on)


async def lock_for_checkin(session: AsyncSession, invitee_id: int) -> Invite | None:
    """First thing in a check-in transaction: lock the member (MemberMerged if linking folded
    them into another meanwhile) and, if their invite waits for this first check-in, its
    inviter too, in id order (the order a merge locks members in)."""
    invite = await invites.of_invitee(session, invitee_id)
    if invite is None or invite.status != invites.WAITING:
        await ledger.lock_member(session, invitee_id)
        return None
    await invites.lock_pair(session, invitee_id, invite.inviter_id)
    return invite


async def reward_on_first_checkin(
    session: AsyncSession,
    services: Services,
    invitee_id: int,
    now: datetime,
    *,
    by_order: bool = False,
) -> Settled | None:
    """Called in the invitee's check-in transaction (after `waiting_invite` found one):
    settle their invite, at most once."""
    rules = services.rules
    day = local_day(now, services.settings.tz)
    invite = await invites.settle_first_checkin(
        session, invitee_id, day, rules.invites.daily_review_threshold, now
    )
    if invite is None:
        return None
    if invite.status == invites.REVIEW:
        log.info("invite reward held for review invite=%s inviter=%s", invite.id, invite.inviter_id)
        return Settled(invite.id, invite.inviter_id, invite.status, by_order=by_order)
    return replace(await _pay(session, services, invite, now), by_order=by_order)


async def _pay(session: AsyncSession, services: Services, invite: Invite, now: datetime) -> Settled:
    rules = services.rules
    points = rules.invites.inviter_points
    balance = 0
    if points:
        moved = await ledger.earn(
            session,
            invite.inviter_id,
            points,
            "invite-reward",
            reward_key(invite.id),
            now,
            expiry_days=rules.points.expiry_days,
        )
        balance = moved.balance
        services.metrics.points_issued.labels("invite").inc(points)
    change = await apply_growth(session, rules, invite.inviter_id, rules.growth.per_invite)
    return Settled(invite.id, invite.inviter_id, invites.REWARDED, points, balance, change)


async def tell_inviter(session: AsyncSession, services: Services, settled: Settled | None) -> bool:
    """In the transaction that decided the reward: queue the inviter's push (the outbox sends
    it in their app and language once this commits). True when a push was queued: wake the
    sender after the commit."""
    if settled is None:
        return False
    growth = services.rules.growth.per_invite

    def render(t: Translator) -> Reply:
        if settled.by_order and settled.status != invites.REJECTED:
            return _by_order_text(t, services, settled, growth)
        if settled.status == invites.REVIEW:
            return Reply(
                t(
                    N_(
                        "A friend you invited checked in for the first time. You have had many "
                        "invite rewards today, so this one waits for a quick review."
                    )
                )
            )
        if settled.status == invites.REJECTED:
            return Reply(t(N_("An invite reward of yours was not approved after review.")))
        lines = [
            t(
                N_(
                    "A friend you invited checked in for the first time: +{points} points and "
                    "+{growth} growth for you. Balance: {balance}."
                ),
                points=settled.points,
                growth=growth,
                balance=settled.balance,
            )
        ]
        if settled.tier is not None and settled.tier.upgraded:
            lines.append(upgrade_text(t, services.rules, settled.tier.new))
        return Reply("\n".join(lines))

    key = f"invite:{settled.invite_id}:{settled.status}"
    queued = await services.pushes.to_member(
        session, settled.inviter_id, "invite-reward", key, render
    )
    return queued is not None


def _by_order_text(t: Translator, services: Services, settled: Settled, growth: int) -> Reply:
    if settled.status == invites.REVIEW:
        return Reply(
            t(
                N_(
                    "A friend you invited placed their first order. You have had many invite "
                    "rewards today, so this one waits for a quick review."
                )
            )
        )
    lines = [
        t(
            N_(
                "A friend you invited placed their first order: +{points} points and "
                "+{growth} growth for you. Balance: {balance}."
            ),
            points=settled.points,
            growth=growth,
            balance=settled.balance,
        )
    ]
    if settled.tier is not None and settled.tier.upgraded:
        lines.append(upgrade_text(t, services.rules, settled.tier.new))
    return Reply("\n".join(lines))


async def review(services: Services, invite_id: int, approve: bool) -> Settled | None:
    """A moderator's decision on a held reward; paid once however often it is approved."""
    now = services.clock.now()
    async with services.db.transaction() as session:
        invite = await invites.decide(session, invite_id, approve, now)
        if invite is None:
            return None
        by_order = services.rules.invites.reward_on == "first_order"
        settled = (
            replace(await _pay(session, services, invite, now), by_order=by_order)
            if approve
            else Settled(invite.id, invite.inviter_id, invites.REJECTED)
        )
        told = await tell_inviter(session, services, settled)
    if told:
        services.pushes.wake()
    return settled


async def after_merge(
    session: AsyncSession, services: Services, survivor_id: int, loser_id: int, now: datetime
) -> None:
    """Linking two members settles their invites (the merge holds both members locked; the
    invite rows are locked here, so no review decision lands in between):
    - one person cannot have invited themself: an invite between the halves is void;
    - one person is attributed once: if both halves were invited, the survivor's stands;
    - the loser's invite moves to the survivor only if the survivor could have been invited
      by that code itself (new within the window, not older than the inviter).
    What a voided invite paid is taken back from whoever holds it."""

    def holder(member_id: int) -> int:
        return survivor_id if member_id == loser_id else member_id

    for invite in await invites.between(session, survivor_id, loser_id):
        await _void(session, services, invite, holder, now)
    theirs = await invites.of_invitee(session, survivor_id, lock=True)
    mine = await invites.of_invitee(session, loser_id, lock=True)
    if mine is not None and mine.status != invites.VOID:
        if theirs is None and await _could_have_been_invited(session, services, mine, survivor_id):
            await invites.move_invitee(session, loser_id, survivor_id)
        else:
            await _void(session, services, mine, holder, now)
    await invites.move_inviter(session, loser_id, survivor_id)


async def _could_have_been_invited(
    session: AsyncSession, services: Services, invite: Invite, member_id: int
) -> bool:
    member = await session.get(Member, member_id)
    inviter = await session.get(Member, invite.inviter_id)
    if member is None or inviter is None:
        return False
    window = timedelta(days=services.rules.invites.attribution_days)
    return member.created_at >= invite.created_at - window and (
        inviter.created_at <= member.created_at
    )


async def _void(
    session: AsyncSession,
    services: Services,
    invite: Invite,
    holder: Callable[[int], int],
    now: datetime,
) -> None:
    """Mark an invite void and reverse what it paid, from the members who hold it now."""
    if invite.status == invites.VOID:
        return
    for key in (welcome_key(invite.id), reward_key(invite.id)):
        paid = (
            await session.execute(
                select(LedgerEntry.member_id, LedgerEntry.amount).where(
                    LedgerEntry.idempotency_key == key
                )
            )
        ).first()
        if paid is not None:
            await ledger.reverse(
                session,
                holder(paid.member_id),
                paid.amount,
                "invite-void",
                f"void:{key}",
                now,
                lot_key=key,
            )
    if invite.status == invites.REWARDED:
        growth = services.rules.growth.per_invite
        await apply_growth(session, services.rules, holder(invite.inviter_id), -growth)
    await invites.set_status(session, invite.id, invites.VOID, now)
