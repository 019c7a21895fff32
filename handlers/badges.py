"""Badges (streaks of 7, 30 and 100 days, first invite, first redemption, first flash-sale
win), each given once with a message; `/badges` shows earned and next; `/top` is this month's
check-in leaderboard with masked names and the member's own rank."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import local_day
from bot.core.context import Context
from bot.core.i18n import N_, Translator
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from storage import badges, invites

router = Router("badges")

STREAKS = (7, 30, 100)
FIRST_INVITE, FIRST_REDEMPTION, FIRST_FLASH_SALE = "first_invite", "first_redemption", "first_win"
LABELS = {
    "streak_7": N_("7-day streak"),
    "streak_30": N_("30-day streak"),
    "streak_100": N_("100-day streak"),
    FIRST_INVITE: N_("First friend invited"),
    FIRST_REDEMPTION: N_("First reward redeemed"),
    FIRST_FLASH_SALE: N_("First flash-sale win"),
}
TOP_SIZE = 10


async def award_streaks(
    session: AsyncSession, member_id: int, streak: int, now: datetime
) -> list[str]:
    """The streak badges the streak reaches and the member did not have: given now."""
    given = []
    for days in STREAKS:
        if streak >= days and await badges.award(session, member_id, f"streak_{days}", now):
            given.append(f"streak_{days}")
    return given


def announce(t: Translator, given: list[str]) -> list[str]:
    """One line per badge just given, for the reply that caused it."""
    return [t(N_("🏅 New badge: {badge}!"), badge=t(LABELS[name])) for name in given]


@router.action(
    "badges",
    commands=("badges",),
    keywords={"zh_CN": ("勋章",), "zh_TW": ("勳章",), "en": ("badges",)},
    help=N_("Badges: “badges”; this month's leaderboard: “top”"),
    summary=N_("Your badges"),
)
async def show_badges(msg: Inbound, ctx: Context) -> Reply:
    t, me, services = ctx.t, ctx.me, ctx.services
    now = services.clock.now()
    async with services.db.transaction() as session:
        # An invite rewarded before badges existed (or through review) counts here.
        given = []
        invited = (await invites.counts(session, me.id)).rewarded
        if invited and await badges.award(session, me.id, FIRST_INVITE, now):
            given.append(FIRST_INVITE)
        held = await badges.of_member(session, me.id)
        best = await badges.best_streak(session, me.id)
    lines = announce(t, given)
    tz = services.settings.tz
    if held:
        lines.append(t(N_("Your badges:")))
        for name in LABELS:
            if name in held:
                day = local_day(held[name], tz).isoformat()
                lines.append(f"🏅 {t(LABELS[name])} ({day})")
    else:
        lines.append(t(N_("No badges yet.")))
    lines.append(t(N_("Still to earn:")))
    for name in LABELS:
        if name in held:
            continue
        if name.startswith("streak_"):
            days = int(name.removeprefix("streak_"))
            note = t(N_("best streak so far: {best} of {days} days"), best=best, days=days)
            lines.append(f"⬜ {t(LABELS[name])} ({note})")
        else:
            lines.append(f"⬜ {t(LABELS[name])}")
    return Reply("\n".join(lines), private=True)


def mask(name: str | None) -> str:
    """A***e: the first and last characters of the display name, never more."""
    text = (name or "").strip()
    if len(text) <= 1:
        return (text or "?") + "***"
    return f"{text[0]}***{text[-1]}"


@router.action(
    "top",
    commands=("top",),
    keywords={"zh_CN": ("排行榜",), "zh_TW": ("排行榜",), "en": ("top",)},
    summary=N_("This month's check-in leaderboard"),
)
async def top(msg: Inbound, ctx: Context) -> Reply:
    t, me, services = ctx.t, ctx.me, ctx.services
    today = local_day(services.clock.now(), services.settings.tz)
    async with services.db.reader() as session:
        board = await badges.month_board(session, today.replace(day=1), today)
    if not board:
        return Reply(t(N_("No check-ins this month yet. Be the first: “checkin”.")), private=True)
    lines = [t(N_("Check-ins this month:"))]
    for place in board[:TOP_SIZE]:
        days = t(N_("check-ins: {days}"), days=place.days)
        lines.append(f"{place.rank}. {mask(place.name)} — {days}")
    mine = next((p for p in board if p.member_id == me.id), None)
    if mine is None:
        lines.append(t(N_("You have not checked in this month yet.")))
    else:
        lines.append(t(N_("You: #{rank} (check-ins: {days})."), rank=mine.rank, days=mine.days))
    return Reply("\n".join(lines), private=True)


def flash_win_note(t: Translator) -> list[str]:
    """The first flash-sale win's badge, as the winner's reply announces it (the claim engine
    gives the badge with the claim: handlers/__init__.py registers it)."""
    return announce(t, [FIRST_FLASH_SALE])
