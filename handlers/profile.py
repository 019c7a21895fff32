"""A member's own settings: language and birthday (settable once)."""

from __future__ import annotations

from datetime import date

from bot.core.context import Context
from bot.core.dialogs import Dialogs
from bot.core.errors import DomainError
from bot.core.i18n import N_, Translator
from bot.core.messages import Button, Inbound, Reply
from bot.core.router import Router
from storage import members

router = Router("profile")

LANGUAGE_NAMES = {"zh_CN": "简体中文", "zh_TW": "繁體中文", "en": "English"}
LANGUAGE_ALIASES = {
    "zh_cn": "zh_CN",
    "zh-cn": "zh_CN",
    "zh": "zh_CN",
    "cn": "zh_CN",
    "简体": "zh_CN",
    "简体中文": "zh_CN",
    "中文": "zh_CN",
    "zh_tw": "zh_TW",
    "zh-tw": "zh_TW",
    "tw": "zh_TW",
    "繁體": "zh_TW",
    "繁體中文": "zh_TW",
    "繁体": "zh_TW",
    "en": "en",
    "english": "en",
    "英文": "en",
}


def parse_birthday(text: str) -> str | None:
    """Normalise MM-DD (also M-D, MM/DD, MM.DD); None unless it is a real calendar day."""
    parts = text.strip().replace("/", "-").replace(".", "-").split("-")
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    if len(parts) != 2 or not all(p.isdecimal() and len(p) <= 2 for p in parts):
        return None
    month, day = int(parts[0]), int(parts[1])
    try:
        date(2000, month, day)  # a leap year, so 02-29 is a valid birthday
    except ValueError:
        return None
    return f"{month:02d}-{day:02d}"


@router.action(
    "lang",
    commands=("lang",),
    keywords={"zh_CN": ("语言",), "zh_TW": ("語言",), "en": ("lang", "language")},
    menu="LANG",
    help=N_("Language: /lang zh_CN | zh_TW | en"),
    summary=N_("Choose your language"),
)
async def language(msg: Inbound, ctx: Context) -> Reply:
    asked = msg.args.strip()
    choice = LANGUAGE_ALIASES.get(asked.lower())
    if choice is None:
        options = ", ".join(f"{code} {name}" for code, name in LANGUAGE_NAMES.items())
        lines = [ctx.t(N_("Choose a language: {options}. For example: /lang en"), options=options)]
        if asked:
            # Said first: showing only the menu reads as if "/lang fr" had been ignored.
            lines.insert(0, ctx.t(N_("{language} is not supported."), language=asked[:20]))
        return Reply(
            "\n".join(lines),
            buttons=tuple(Button(name, f"LANG:{code}") for code, name in LANGUAGE_NAMES.items()),
        )
    async with ctx.services.db.transaction() as session:
        await members.set_locale(session, ctx.me.id, choice)
    return Reply(Translator(choice)(N_("Language set to English.")))


@router.action(
    "birthday",
    commands=("birthday",),
    keywords={"zh_CN": ("生日",), "zh_TW": ("生日",), "en": ("birthday",)},
    help=N_("Birthday (double points): /birthday MM-DD"),
    summary=N_("Set your birthday for double points"),
)
async def birthday(msg: Inbound, ctx: Context) -> Reply:
    t, me = ctx.t, ctx.me
    if not msg.args.strip():
        if me.birthday:
            return Reply(t(N_("Your birthday is {birthday}."), birthday=me.birthday))
        await Dialogs(ctx.services.cache).ask(me.id, "birthday")  # the next message answers
        return Reply(t(N_("Tell me your birthday as MM-DD, for example: /birthday 05-20")))
    parsed = parse_birthday(msg.args)
    if parsed is None:
        raise DomainError(N_("Please send your birthday as MM-DD, for example: /birthday 05-20"))
    async with ctx.services.db.transaction() as session:
        saved = await members.set_birthday_once(session, me.id, parsed)
        # Read what is stored: a concurrent /birthday may have set it after `me` was loaded.
        stored = None if saved else await members.get(session, me.id)
    await Dialogs(ctx.services.cache).done(me.id)
    if stored is not None:
        raise DomainError(
            N_("Your birthday is already set to {birthday}; it can only be set once."),
            birthday=stored.birthday,
        )
    return Reply(
        t(N_("Birthday saved: {birthday}. Check in that day for double points!"), birthday=parsed)
    )
