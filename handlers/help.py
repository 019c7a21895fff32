"""Help and the menu, built from what every feature declares; the answer to unknown text."""

from __future__ import annotations

from bot.core.context import Context
from bot.core.dialogs import MEDIA_ANSWERS, Dialogs
from bot.core.i18n import N_, Translator
from bot.core.messages import Button, Inbound, Reply
from bot.core.router import MEDIA, Router, Vocabulary
from handlers.flashsales import claim_from_link
from handlers.invites import welcome_referral

router = Router("help")

HELP_HEADER = N_("Hi! Here is what I can do:")


def help_text(t: Translator, words: Vocabulary) -> str:
    """The header, then one line per action that declares one."""
    lines = [t(HELP_HEADER), *(f"• {t(a.help)}" for a in words.listed("help") if a.help)]
    return "\n".join(lines)


def menu_buttons(t: Translator, words: Vocabulary) -> tuple[Button, ...]:
    """A button for every action with a label and a menu key."""
    return tuple(Button(t(a.label), a.menu) for a in words.listed("label") if a.label and a.menu)


def with_help(ctx: Context, first: str) -> Reply:
    """`first`, a blank line, the help, and the menu buttons."""
    text = f"{ctx.t(first)}\n\n{help_text(ctx.t, ctx.words)}"
    return Reply(text, buttons=menu_buttons(ctx.t, ctx.words))


@router.action(
    "help",
    commands=("help", "start", "menu"),  # the first is the one Telegram lists
    keywords={"zh_CN": ("帮助", "菜单"), "zh_TW": ("幫助", "選單"), "en": ("help", "menu")},
    menu="HELP",
    summary=N_("What I can do"),
    # A new member's first words are often a greeting: they get the welcome.
    phrases={
        "zh_CN": ("你好", "您好", "嗨", "在吗"),
        "zh_TW": ("你好", "您好", "嗨", "在嗎"),
        "en": ("hello", "hi", "hey", "start"),
    },
)
async def show_help(msg: Inbound, ctx: Context) -> Reply:
    claimed = await claim_from_link(msg, ctx) if msg.referral else None
    if claimed is not None:
        return claimed
    lines = []
    if ctx.is_new:
        lines.append(ctx.t(N_("Welcome! You are now a member.")))
    note = await welcome_referral(msg, ctx) if msg.referral else None
    if note:
        lines.append(note)
    lines.append(help_text(ctx.t, ctx.words))
    # With a referral note (a gift and a balance) it is the member's own business.
    return Reply("\n".join(lines), buttons=menu_buttons(ctx.t, ctx.words), private=bool(note))


@router.action(MEDIA)
async def media_received(msg: Inbound, ctx: Context) -> Reply | None:
    """A picture or voice message: the answer to a question that asked for one (a
    complaint's photo), else acknowledged."""
    pending = await Dialogs(ctx.services.cache).pending(ctx.me.id)
    step = ctx.words.handler(pending) if pending in MEDIA_ANSWERS else None
    if step is not None:
        return await step.handler(msg, ctx)
    return Reply(ctx.t(N_("Thanks, I received it.")) + "\n\n" + help_text(ctx.t, ctx.words))


async def unknown(msg: Inbound, ctx: Context) -> Reply:
    """Text that matches no command or keyword: a short help, never silence."""
    return with_help(ctx, N_("Sorry, I didn't understand that."))
