"""Help and the menu; also the polite answer for unknown text and not-yet-built features."""

from __future__ import annotations

from bot.core.context import Context
from bot.core.i18n import N_, Translator
from bot.core.messages import Button, Inbound, Reply
from bot.core.router import Router
from handlers.invites import welcome_referral

router = Router("help")

HELP_TEXT = N_(
    "Hi! Here is what I can do:\n"
    "• Check in daily for points: send “checkin” or /checkin\n"
    "• Your points and history: “points” or /points\n"
    "• Your tier and benefits: “tier” or /tier\n"
    "• Invite friends, both of you get points: “invite” or /invite\n"
    "• Interest communities: “communities” or /communities\n"
    "• Link your WeChat and Telegram accounts: /link\n"
    "• Language: /lang zh_CN | zh_TW | en · Birthday (double points): /birthday MM-DD"
)


def menu_buttons(t: Translator) -> tuple[Button, ...]:
    return (
        Button(t(N_("Check in")), "CHECKIN"),
        Button(t(N_("Points")), "POINTS"),
        Button(t(N_("Tier")), "TIER"),
        Button(t(N_("Invite")), "INVITE"),
        Button(t(N_("Communities")), "COMMUNITIES"),
        Button(t(N_("Rewards")), "REWARDS"),
        Button(t(N_("Complain")), "COMPLAIN"),
        Button(t(N_("Link accounts")), "LINK"),
    )


@router.action("help")
async def show_help(msg: Inbound, ctx: Context) -> Reply:
    lines = []
    if ctx.is_new:
        lines.append(ctx.t(N_("Welcome! You are now a member.")))
    note = await welcome_referral(msg, ctx) if msg.referral else None
    if note:
        lines.append(note)
    lines.append(ctx.t(HELP_TEXT))
    # With a referral note (a gift and a balance) it is the member's own business.
    return Reply("\n".join(lines), buttons=menu_buttons(ctx.t), private=bool(note))


@router.action(
    "claim",
    "rewards",
    "redeem",
    "complain",
    "tickets",
    "ticket",
)
async def coming_soon(msg: Inbound, ctx: Context) -> Reply:
    """Features of the SPEC that this release does not have yet say so instead of failing."""
    return Reply(
        ctx.t(N_("This feature is coming soon.")) + "\n\n" + ctx.t(HELP_TEXT),
        buttons=menu_buttons(ctx.t),
    )


@router.action("media")
async def media_received(msg: Inbound, ctx: Context) -> Reply:
    """A picture or voice message: acknowledged (complaints will be able to attach it)."""
    return Reply(ctx.t(N_("Thanks, I received it.")) + "\n\n" + ctx.t(HELP_TEXT))


async def unknown(msg: Inbound, ctx: Context) -> Reply:
    """Text that matches no command or keyword: a short help, never silence."""
    return Reply(
        ctx.t(N_("Sorry, I didn't understand that.")) + "\n\n" + ctx.t(HELP_TEXT),
        buttons=menu_buttons(ctx.t),
    )
