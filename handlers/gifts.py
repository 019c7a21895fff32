"""Welcome and birthday gifts: the rules name a reward per tier (`[gifts]`); its voucher is
given once (welcome) or once a year (birthday) by the every-minute `deadlines` hook, and the
member is told through the outbox."""

from __future__ import annotations

from calendar import isleap
from datetime import date, timedelta

from sqlalchemy import select

from bot.core.clock import local_day
from bot.core.context import Services
from bot.core.i18n import N_, Translator
from bot.core.messages import Reply
from bot.jobs.pushes import push_to_member
from handlers.rewards import name_of
from storage import gifts, nudges
from storage.models import Member

KIND = "gift"
TEXTS = {
    "welcome": N_("Welcome! A gift for you: {name}. Voucher code: {code} (valid until {day})."),
    "birthday": N_(
        "Happy birthday! A gift for you: {name}. Voucher code: {code} (valid until {day})."
    ),
}


def birthdays_on(day: date) -> set[str]:
    """The "MM-DD" birthdays celebrated on `day` (29 February on the 28th in other years)."""
    days = {day.strftime("%m-%d")}
    if (day.month, day.day) == (2, 28) and not isleap(day.year):
        days.add("02-29")
    return days


async def give_gifts(services: Services) -> int:
    """Every minute: welcome gifts to members who joined lately, birthday gifts today."""
    rules = services.rules.gifts
    now = services.clock.now()
    today = local_day(now, services.settings.tz)
    due: list[tuple[int, str, str, str]] = []  # member, reward slug, key, occasion
    async with services.db.reader() as session:
        if rules.welcome:
            since = now - timedelta(hours=rules.welcome_hours)
            for mid, tier in await gifts.joined_since(session, since):
                if tier in rules.welcome:
                    due.append((mid, rules.welcome[tier], f"gift:welcome:{mid}", "welcome"))
        if rules.birthday:
            born = await nudges.born_on(session, birthdays_on(today))
            tiers = await session.execute(select(Member.id, Member.tier).where(Member.id.in_(born)))
            for mid, tier in tiers.all():
                if tier in rules.birthday:
                    key = f"gift:birthday:{mid}:{today.year}"
                    due.append((mid, rules.birthday[tier], key, "birthday"))
        done = await gifts.keys_given(session, [key for _, _, key, _ in due])
    given = 0
    for mid, slug, key, occasion in due:
        if key not in done:
            given += await _give(services, mid, slug, key, occasion)
    if given:
        services.pushes.wake()
    return given


async def _give(services: Services, member_id: int, slug: str, key: str, occasion: str) -> int:
    tz = services.settings.tz
    async with services.db.transaction() as session:
        found = await gifts.give(session, member_id, slug, key, services.clock.now())
        if found is None:
            return 0
        voucher, reward = found

        def render(t: Translator) -> Reply:
            day = voucher.expires_at.astimezone(tz).date().isoformat()
            name = name_of(reward, t.locale)
            return Reply(t(TEXTS[occasion], name=name, code=voucher.code, day=day))

        await push_to_member(session, services, member_id, KIND, key, render)
    return 1
