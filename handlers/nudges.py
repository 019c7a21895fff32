"""Nudges as the member sees them: `/mute` (退订) and `/unmute` (订阅) for marketing pushes,
and the texts of the reminders, greetings and notices the jobs (bot/jobs) send."""

from __future__ import annotations

from datetime import date

from bot.core.context import Context
from bot.core.i18n import N_, Translator
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from handlers.tiers import tier_label
from storage import nudges

router = Router("nudges")

MUTED = N_(
    "Done: no more promotions from us (campaigns, come-back messages, flash-sale alerts). "
    "Answers, ticket updates and codes you ask for still come. Send /unmute to resume."
)
ALREADY_MUTED = N_("Promotions are already off. Send /unmute to turn them back on.")
UNMUTED = N_("Promotions are on again. Send /mute to stop them.")
ALREADY_UNMUTED = N_("Promotions are already on. Send /mute to stop them.")


@router.action(
    "mute",
    commands=("mute",),
    keywords={"zh_CN": ("退订",), "zh_TW": ("退訂",), "en": ("mute",)},
)
async def mute(msg: Inbound, ctx: Context) -> Reply:
    """Stop marketing pushes; replies and service notices still come."""
    async with ctx.services.db.transaction() as session:
        changed = await nudges.mute(session, ctx.me.id, ctx.services.clock.now())
    return Reply(ctx.t(MUTED if changed else ALREADY_MUTED))


@router.action(
    "unmute",
    commands=("unmute",),
    keywords={"zh_CN": ("订阅",), "zh_TW": ("訂閱",), "en": ("unmute",)},
)
async def unmute(msg: Inbound, ctx: Context) -> Reply:
    """Resume marketing pushes."""
    async with ctx.services.db.transaction() as session:
        changed = await nudges.unmute(session, ctx.me.id)
    return Reply(ctx.t(UNMUTED if changed else ALREADY_UNMUTED))


def _day(t: Translator, day: date) -> str:
    return t(N_("{month}/{day}"), month=day.month, day=day.day)


class Texts:
    """The nudge texts (bot.jobs.texts.NudgeTexts), rendered in the member's language."""

    def reminder(self, t: Translator, points: int, expires_on: date) -> Reply:
        return Reply(
            t(
                N_(
                    "Reminder: {points} of your points expire soon, the first on {day}. "
                    "Send /points to see them."
                ),
                points=points,
                day=_day(t, expires_on),
            ),
            private=True,
        )

    def birthday(self, t: Translator, multiplier: int) -> Reply:
        if multiplier > 1:
            text = t(
                N_("Happy birthday! Check in today for {multiplier}× points: /checkin"),
                multiplier=multiplier,
            )
        else:
            text = t(N_("Happy birthday! We wish you a wonderful day."))
        return Reply(text)

    def dormant(
        self, t: Translator, balance: int, expiring: int, expires_on: date | None, streak: int
    ) -> Reply:
        lines = [t(N_("We miss you! You have {balance} points."), balance=balance)]
        if expiring and expires_on is not None:
            lines.append(
                t(
                    N_("{points} of them expire soon, the first on {day}."),
                    points=expiring,
                    day=_day(t, expires_on),
                )
            )
        if streak > 1:
            lines.append(t(N_("Your last check-in streak was {days} days."), days=streak))
        lines.append(t(N_("Check in today to start a new streak: /checkin")))
        return Reply("\n".join(lines), private=True)

    def tier_down(self, t: Translator, old: str, new: str, earned: int, needed: int) -> Reply:
        return Reply(
            t(
                N_(
                    "Your yearly tier review: you earned {earned} growth this past year, "
                    "and {old} needs {needed} a year. Your tier is now {new}. "
                    "Send /tier to see your benefits and progress."
                ),
                earned=earned,
                old=tier_label(t, old),
                needed=needed,
                new=tier_label(t, new),
            ),
            private=True,
        )


TEXTS = Texts()
