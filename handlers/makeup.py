"""`/makeup`: fill the last missed day (within `rewards.makeup_days`) for
`rewards.makeup_cost` points, at most `rewards.makeup_per_month` a month; the streak then
runs on as if that day had been checked in."""

from __future__ import annotations

from datetime import datetime, time

from bot.core.clock import local_day
from bot.core.context import Context
from bot.core.errors import DomainError
from bot.core.i18n import N_
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from handlers.badges import announce, award_streaks
from storage import ledger, makeup
from storage.errors import InsufficientPoints
from storage.ledger import lock_member

router = Router("makeup")


@router.action(
    "makeup",
    commands=("makeup",),
    keywords={"zh_CN": ("补签",), "zh_TW": ("補簽",), "en": ("makeup",)},
    help=N_("Make up a missed check-in: “makeup”"),
    summary=N_("Make up a missed check-in"),
)
async def make_up(msg: Inbound, ctx: Context) -> Reply:
    t, me, services = ctx.t, ctx.me, ctx.services
    rules, tz = services.rules.rewards, services.settings.tz
    now = services.clock.now()
    today = local_day(now, tz)
    month_start = datetime.combine(today.replace(day=1), time(), tz)
    first = local_day(me.created_at, tz)
    try:
        async with services.db.transaction() as session:
            await lock_member(session, me.id)  # one make-up at a time: the count stays true
            day = await makeup.missed_day(session, me.id, today, rules.makeup_days, first)
            if day is None:
                raise DomainError(
                    N_("Nothing to make up: no missed day in the last {days} days."),
                    days=rules.makeup_days,
                )
            used = await makeup.made_up_since(session, me.id, month_start)
            if used >= rules.makeup_per_month:
                raise DomainError(
                    N_("You have used this month's {limit} make-ups."),
                    limit=rules.makeup_per_month,
                )
            moved = await ledger.spend(
                session, me.id, rules.makeup_cost, "makeup", makeup.ledger_key(me.id, day), now
            )
            streak = await makeup.fill(session, me.id, day, today, now)
            given = await award_streaks(session, me.id, streak, now)
    except InsufficientPoints as exc:
        raise DomainError(
            N_("A make-up costs {cost} points; you have {balance}."),
            cost=rules.makeup_cost,
            balance=exc.balance,
        ) from None
    text = t(
        N_(
            "Made up {day} for {cost} points. Streak: {streak} days. Balance: {balance}. "
            "Make-ups left this month: {left}."
        ),
        day=day.isoformat(),
        cost=rules.makeup_cost,
        streak=streak,
        balance=moved.balance,
        left=rules.makeup_per_month - used - 1,
    )
    return Reply("\n".join([text, *announce(t, given)]), private=True)
