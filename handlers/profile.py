"""A member's own settings: language and birthday (settable once)."""

from __future__ import annotations

import re
import unicodedata
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


_CHINESE_DATE = re.compile(r"^(?:(\d{4})年)?(\d{1,2})月(\d{1,2})[日号號]?$")
_FULL_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_MONTH_DAY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})$")
YES = frozenset({"yes", "y", "ok", "是", "是的", "对", "對", "好", "确认", "確認", "保存", "儲存"})
NO = frozenset({"no", "n", "否", "不", "不是", "不对", "不對", "取消", "cancel"})


def parse_birthday(text: str) -> str | None:
    """MM-DD (also M-D, MM/DD, MM.DD), 5月20日, or a full date 2000-05-20 / 2000年5月20日
    (the year is not kept); None unless it is a real calendar day."""
    # "²" is a digit NFKC would turn into 2: nobody types a birthday with it.
    if any(ch.isdigit() and not ch.isdecimal() for ch in text):
        return None
    # NFKC: full-width digits ("０５-２０") from Chinese input methods.
    typed = unicodedata.normalize("NFKC", text).strip().replace(" ", "")
    year = 2000  # a leap year, so 02-29 is a valid birthday when no year is given
    if found := _CHINESE_DATE.match(typed) or _FULL_DATE.match(typed):
        year = int(found.group(1) or year)
        month, day = int(found.group(2)), int(found.group(3))
    elif found := _MONTH_DAY.match(typed):
        month, day = int(found.group(1)), int(found.group(2))
    else:
        return None
    try:
        date(year, month, day)
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
    # From here on this answer speaks the chosen language (a first answer's privacy line too).
    ctx.locale, ctx.t = choice, Translator(choice)
    return Reply(ctx.t(N_("Language set to English.")))


@router.action(
    "birthday",
    commands=("birthday",),
    keywords={"zh_CN": ("生日",), "zh_TW": ("生日",), "en": ("birthday",)},
    menu="BIRTHDAY",  # the buttons of the confirmation: BIRTHDAY:yes MM-DD, BIRTHDAY:no
    help=N_("Birthday (double points): /birthday MM-DD"),
    summary=N_("Set your birthday for double points"),
)
async def birthday(msg: Inbound, ctx: Context) -> Reply:
    """Ask, confirm, then save once: a birthday doubles points, so a member cannot change it
    (an operator can correct it), and a slip of the keyboard must not become permanent."""
    t, me = ctx.t, ctx.me
    dialogs = Dialogs(ctx.services.cache)
    word, _, rest = msg.args.strip().partition(" ")
    if word.lower() in YES:
        chosen = parse_birthday(rest) if rest else await _proposed(ctx)
        if chosen is None:
            await dialogs.ask(me.id, "birthday")
            return Reply(t(ASK))
        return await _save(ctx, chosen)
    if word.lower() in NO:
        await _forget_proposal(ctx)
        return Reply(t(N_("Not saved. Send /birthday MM-DD whenever you like.")))
    if not word:
        if me.birthday:
            return Reply(t(N_("Your birthday is {birthday}."), birthday=me.birthday))
        await dialogs.ask(me.id, "birthday")  # the next message answers
        return Reply(t(ASK))
    if me.birthday:
        raise _already_set(me.birthday)
    parsed = parse_birthday(msg.args)
    if parsed is None:
        raise DomainError(N_("Please send your birthday as MM-DD, for example: /birthday 05-20"))
    cache = ctx.services.cache
    await cache.set(_proposal_key(ctx), parsed, dialogs.ttl)
    await dialogs.ask(me.id, "birthday")  # "yes" / "是" answers
    return Reply(
        t(
            N_(
                "Is your birthday {birthday} (month-day)? It can be set only once. "
                "Reply “yes” to save it or “no” to cancel."
            ),
            birthday=parsed,
        ),
        buttons=(
            Button(t(N_("Yes, save it")), f"BIRTHDAY:yes {parsed}"),
            Button(t(N_("No")), "BIRTHDAY:no"),
        ),
    )


ASK = N_("Tell me your birthday as MM-DD, for example: /birthday 05-20")


def _proposal_key(ctx: Context) -> str:
    return ctx.services.cache.keys.dialog(ctx.me.id) + ":birthday"


async def _proposed(ctx: Context) -> str | None:
    return await ctx.services.cache.get(_proposal_key(ctx))


async def _forget_proposal(ctx: Context) -> None:
    await ctx.services.cache.delete(_proposal_key(ctx))
    await Dialogs(ctx.services.cache).done(ctx.me.id)


def _already_set(birthday: str | None) -> DomainError:
    return DomainError(
        N_("Your birthday is already set to {birthday}; it can only be set once."),
        birthday=birthday,
    )


async def _save(ctx: Context, chosen: str) -> Reply:
    async with ctx.services.db.transaction() as session:
        saved = await members.set_birthday_once(session, ctx.me.id, chosen)
        # Read what is stored: a concurrent /birthday may have set it after `me` was loaded.
        stored = None if saved else await members.get(session, ctx.me.id)
    await _forget_proposal(ctx)
    if stored is not None:
        raise _already_set(stored.birthday)
    return Reply(
        ctx.t(
            N_("Birthday saved: {birthday}. Check in that day for double points!"),
            birthday=chosen,
        )
    )
