"""Daily check-in: streak rewards, tier multiplier, birthday double, exactly once a day."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from bot.core.clock import local_day
from bot.core.context import Context
from bot.core.i18n import N_
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from bot.settings import Rules
from handlers.badges import announce, award_streaks
from handlers.invite_rewards import lock_for_checkin, reward_on_first_checkin, tell_inviter
from handlers.tiers import apply_growth, apply_multiplier, upgrade_text
from storage import checkins, ledger

router = Router("checkin")


def is_birthday(birthday: str | None, day: date) -> bool:
    """MM-DD matches the day; a 02-29 birthday is kept on 02-28 in years without one."""
    if birthday is None:
        return False
    if birthday == "02-29" and not calendar.isleap(day.year):
        return (day.month, day.day) == (2, 28)
    return birthday == day.strftime("%m-%d")


def reward_for(rules: Rules, tier: str, birthday: str | None, streak: int, day: date) -> int:
    """Points for the `streak`-th consecutive day: schedule × tier multiplier, ×2 on birthday,
    × the member-day multiplier on the member day (both: both)."""
    schedule = rules.checkin.streak_rewards
    points = apply_multiplier(schedule[(streak - 1) % len(schedule)], rules.tier(tier).multiplier)
    if is_birthday(birthday, day):
        points *= rules.checkin.birthday_multiplier
    if rules.rewards.is_member_day(day):
        points *= rules.rewards.member_day_multiplier
    return points


@router.action(
    "checkin",
    commands=("checkin",),
    keywords={"zh_CN": ("签到",), "zh_TW": ("簽到",), "en": ("checkin",)},
    menu="CHECKIN",
    label=N_("Check in"),
    help=N_("Check in daily for points: send “checkin” or /checkin"),
    summary=N_("Check in for today's points"),
    phrases={
        "zh_CN": ("我要签到", "签个到", "每日签到"),
        "zh_TW": ("我要簽到", "簽個到", "每日簽到"),
        "en": ("check in", "check-in", "check in today"),
    },
)
async def checkin(msg: Inbound, ctx: Context) -> Reply:
    """Credit today's check-in once, however many arrive at once; tell the streak either way."""
    services, t, me = ctx.services, ctx.t, ctx.me
    rules = services.rules
    now = services.clock.now()
    today = local_day(now, services.settings.tz)
    tomorrow = today + timedelta(1)
    told = False
    async with services.db.transaction() as session:
        if rules.invites.reward_on == "first_checkin":
            waiting = await lock_for_checkin(session, me.id)
        else:  # the inviter is paid at the first order (handlers/orders.py)
            await ledger.lock_member(session, me.id)
            waiting = None
        result = await checkins.record(
            session,
            me.id,
            today,
            now,
            lambda streak: reward_for(rules, me.tier, me.birthday, streak, today),
        )
        if result.created:
            moved = await ledger.earn(
                session,
                me.id,
                result.points,
                "checkin",
                f"checkin:{me.id}:{today.isoformat()}",
                now,
                expiry_days=rules.points.expiry_days,
            )
            change = await apply_growth(session, rules, me.id, rules.checkin.growth)
            given = await award_streaks(session, me.id, result.streak, now)
            invite = (
                await reward_on_first_checkin(session, services, me.id, now) if waiting else None
            )
            told = await tell_inviter(session, services, invite)
    tier = change.new if result.created else me.tier
    next_reward = reward_for(rules, tier, me.birthday, result.streak + 1, tomorrow)
    if not result.created:
        return Reply(
            t(
                N_(
                    "You have already checked in today ({streak}-day streak). "
                    "Come back tomorrow for {next} points."
                ),
                streak=result.streak,
                next=next_reward,
            ),
            private=True,
        )
    services.metrics.checkins.inc()
    if told:
        services.pushes.wake()
    services.metrics.points_issued.labels("checkin").inc(result.points)
    lines = [
        t(
            N_("Checked in! +{points} points, {streak}-day streak. Balance: {balance}."),
            points=result.points,
            streak=result.streak,
            balance=moved.balance,
        )
    ]
    if is_birthday(me.birthday, today):
        lines.append(t(N_("Happy birthday! Today's check-in points are doubled.")))
    if rules.rewards.is_member_day(today) and rules.rewards.member_day_multiplier > 1:
        lines.append(
            t(
                N_("It's member day: check-in points ×{multiplier} today!"),
                multiplier=rules.rewards.member_day_multiplier,
            )
        )
    lines.append(t(N_("Tomorrow: +{next} points."), next=next_reward))
    lines.extend(announce(t, given))
    if change.upgraded:
        lines.append(upgrade_text(t, rules, change.new))
    return Reply("\n".join(lines), private=True)
