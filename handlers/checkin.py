"""Daily check-in: streak rewards, tier multiplier, birthday double, exactly once a day."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import local_day
from bot.core.context import Context
from bot.core.i18n import N_
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from bot.settings import Rules
from handlers.badges import STREAKS, announce, award_streaks
from handlers.invite_rewards import lock_for_checkin, reward_on_first_checkin, tell_inviter
from handlers.tiers import TierChange, apply_growth, apply_multiplier, upgrade_text
from storage import checkin_fast, checkins, invites, ledger, members
from storage.errors import MemberMerged

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
    known_member=True,
)
async def checkin(msg: Inbound, ctx: Context) -> Reply:
    """Credit today's check-in once, however many arrive at once; tell the streak either way.

    The common case (no invite waiting for this check-in) is one statement on PostgreSQL, one
    thread hop on SQLite (storage/checkin_fast.py); the invitee's first check-in, which also
    pays the inviter, takes the general path below.

    The member may be what this process last knew of the account (`known_member`): the
    statement checks the account still belongs to them (else MemberMerged, and the message
    runs once more with a fresh lookup) and reads their tier, birthday and language itself."""
    services, me = ctx.services, ctx.me
    rules = services.rules
    now = services.clock.now()
    today = local_day(now, services.settings.tz)
    day = _day_plan(rules, today)
    plan = checkin_fast.Plan(
        me.id,
        today,
        now,
        day.rewards,
        rules.checkin.growth,
        rules.points.expiry_days,
        day.tier_names,
        day.tier_thresholds,
        STREAK_BADGES,
        invites.WAITING,
        (msg.channel, msg.external_id),
        day.by_tier,
        day.birthdays,
    )
    try:
        done = await checkin_fast.check_in(services.db, plan)
    except checkin_fast.NoSuchMember:
        if not ctx.known_member:
            raise
        # What this process knew is gone (a database restored under it): look up afresh.
        members.forget(services.db, msg.channel, msg.external_id)
        raise MemberMerged(me.id) from None
    if done.status in (checkin_fast.SLOW, checkin_fast.STALE):
        if ctx.known_member:  # the general path goes by the member as given: look them up
            await _look_up_again(msg, ctx)
        return await _general(ctx)
    row = _as_the_row_says(msg, ctx, done)
    if done.status == checkin_fast.CONFLICT:  # a concurrent check-in of the same day won
        async with services.db.reader() as session:
            won = await checkins.of_day(session, me.id, today)
        if won is None:
            # The winner committed before we were refused, but its row has moved on since:
            # the member was merged into another (linked accounts). Run again as that member
            # (bot.core.middleware's retry).
            raise MemberMerged(me.id)
        done = replace(done, status=checkin_fast.REPEAT, streak=won.streak, points=won.points)
    if done.status == checkin_fast.REPEAT:
        return _already(ctx, row.tier, row.birthday, done.streak, today)
    metrics = services.metrics
    metrics.checkins.inc()
    metrics.points_issued.labels("checkin").inc(done.points)
    change = TierChange(0, done.old_tier, done.new_tier)
    return _credited(
        ctx, today, done.streak, done.points, done.balance, change, list(done.badges), row.birthday
    )


def _as_the_row_says(msg: Inbound, ctx: Context, done: checkin_fast.Outcome) -> checkin_fast.Member:
    """The member as the statement read them under its lock (the member given may be what
    this process knew, from before a change made elsewhere): the answer in their language;
    a known member that changed since, or whose tier this check-in raised, is looked up
    afresh next time. Whether pushes wait for them goes to bot.core.middleware.held_pushes."""
    me = ctx.me
    if done.pushes_held is not None:
        ctx.pushes_held = done.pushes_held
    row = done.row or checkin_fast.Member(me.tier, me.birthday, me.locale)
    if row.locale != me.locale:
        ctx.speak(row.locale, msg.locale_hint)
    if (row.tier, row.birthday, row.locale) != (me.tier, me.birthday, me.locale) or (
        done.new_tier and done.new_tier != row.tier
    ):
        members.forget(ctx.services.db, msg.channel, msg.external_id)
    return row


async def _look_up_again(msg: Inbound, ctx: Context) -> None:
    """The member behind the account now; MemberMerged when that is not the one given."""
    found = await members.lookup(ctx.services.db, msg.channel, msg.external_id)
    if found is None or found.id != ctx.me.id:
        raise MemberMerged(ctx.me.id)
    members.remember(ctx.services.db, msg.channel, msg.external_id, found)
    ctx.member = found
    # Their language may have changed elsewhere too (the locale middleware saw the old one).
    ctx.speak(found.locale, msg.locale_hint)


STREAK_BADGES = tuple(STREAKS)
_REWARDS: dict[tuple[int, str, bool, bool], tuple[Rules, tuple[int, ...]]] = {}


def _rewards(rules: Rules, tier: str, birthday: str | None, day: date) -> tuple[int, ...]:
    """The day's reward for each place in the streak schedule: per process, by tier and kind
    of day (Decimal arithmetic per message showed in the profile)."""
    key = (id(rules), tier, is_birthday(birthday, day), rules.rewards.is_member_day(day))
    cached = _REWARDS.get(key)
    if cached is None or cached[0] is not rules:
        n = len(rules.checkin.streak_rewards)
        cached = (rules, tuple(reward_for(rules, tier, birthday, s, day) for s in range(1, n + 1)))
        if len(_REWARDS) > 256:
            _REWARDS.clear()
        _REWARDS[key] = cached
    return cached[1]


@dataclass(frozen=True)
class _DayPlan:
    """What a check-in's statement needs of the rules on one day, the same for every member."""

    rewards: tuple[int, ...]  # the lowest tier's, no birthday
    by_tier: tuple[int, ...]  # every tier's, without and with a birthday (checkin_fast.Plan)
    birthdays: tuple[str, ...]  # "MM-DD" birthdays that are this day
    tier_names: tuple[str, ...]
    tier_thresholds: tuple[int, ...]


_DAY_PLANS: dict[tuple[int, date], tuple[Rules, _DayPlan]] = {}


def _day_plan(rules: Rules, day: date) -> _DayPlan:
    """Per process, by rules and day (the per-message work of a check-in is the statement)."""
    cached = _DAY_PLANS.get((id(rules), day))
    if cached is not None and cached[0] is rules:
        return cached[1]
    birthdays: tuple[str, ...] = (day.strftime("%m-%d"),)
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        birthdays += ("02-29",)  # kept on the 28th in years without a 29th
    names, thresholds = _tier_steps(rules)
    by_tier = tuple(
        points
        for name in names
        for birthday in (None, birthdays[0])
        for points in _rewards(rules, name, birthday, day)
    )
    plan = _DayPlan(_rewards(rules, names[0], None, day), by_tier, birthdays, names, thresholds)
    if len(_DAY_PLANS) > 64:
        _DAY_PLANS.clear()
    _DAY_PLANS[(id(rules), day)] = (rules, plan)
    return plan


def _tier_steps(rules: Rules) -> tuple[tuple[str, ...], tuple[int, ...]]:
    return tuple(t.name for t in rules.tiers), tuple(t.threshold for t in rules.tiers)


def _next_reward(rules: Rules, tier: str, birthday: str | None, streak: int, day: date) -> int:
    """Tomorrow's reward: tomorrow continues the streak at its next place in the schedule."""
    rewards = _rewards(rules, tier, birthday, day)
    return rewards[streak % len(rewards)]


def _already(ctx: Context, tier: str, birthday: str | None, streak: int, today: date) -> Reply:
    rules = ctx.services.rules
    next_reward = _next_reward(rules, tier, birthday, streak, today + timedelta(1))
    return Reply(
        ctx.t(
            N_(
                "You have already checked in today ({streak}-day streak). "
                "Come back tomorrow for {next} points."
            ),
            streak=streak,
            next=next_reward,
        ),
        private=True,
    )


def _credited(
    ctx: Context,
    today: date,
    streak: int,
    points: int,
    balance: int,
    change: TierChange,
    given: list[str],
    birthday: str | None,
) -> Reply:
    t, rules = ctx.t, ctx.services.rules
    next_reward = _next_reward(rules, change.new, birthday, streak, today + timedelta(1))
    lines = [
        t(
            N_("Checked in! +{points} points, {streak}-day streak. Balance: {balance}."),
            points=points,
            streak=streak,
            balance=balance,
        )
    ]
    if is_birthday(birthday, today):
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


async def _credit(
    session: AsyncSession, ctx: Context, points: int, today: date, now: datetime
) -> int:
    """The check-in's lot; the balance after it. A day that pays nothing (the schedule's 0, or
    a tier multiplier flooring it) still counts for the streak: no ledger entry of 0."""
    me = ctx.me
    if points <= 0:
        return await ledger.balance_of(session, me.id)
    moved = await ledger.earn(
        session,
        me.id,
        points,
        "checkin",
        f"checkin:{me.id}:{today.isoformat()}",
        now,
        expiry_days=ctx.services.rules.points.expiry_days,
    )
    return moved.balance


async def _general(ctx: Context) -> Reply:
    """The check-in that settles the member's invite (and pays the inviter) with it."""
    services, me = ctx.services, ctx.me
    rules = services.rules
    now = services.clock.now()
    today = local_day(now, services.settings.tz)
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
            balance = await _credit(session, ctx, result.points, today, now)
            change = await apply_growth(session, rules, me.id, rules.checkin.growth)
            given = await award_streaks(session, me.id, result.streak, now)
            invite = (
                await reward_on_first_checkin(session, services, me.id, now) if waiting else None
            )
            told = await tell_inviter(session, services, invite)
    if not result.created:
        return _already(ctx, me.tier, me.birthday, result.streak, today)
    services.metrics.checkins.inc()
    if told:
        services.pushes.wake()
    services.metrics.points_issued.labels("checkin").inc(result.points)
    return _credited(ctx, today, result.streak, result.points, balance, change, given, me.birthday)
