"""Whatever the help and the menus show, typed back, reaches its action in every language
(issue 16: "My vouchers" was shown, and typing it got "didn't understand")."""

from __future__ import annotations

import re

import pytest

from bot.core.i18n import N_, Translator
from bot.core.messages import Inbound
from bot.core.router import UNKNOWN, Vocabulary
from bot.settings import LOCALES
from handlers import ROUTERS
from handlers.help import help_text, menu_buttons

WORDS = Vocabulary(ROUTERS)
HELPED = WORDS.listed("help")
DIDNT_UNDERSTAND = N_("Sorry, I didn't understand that.")


def help_lines(locale: str) -> list[tuple[str, str]]:
    """(what a help line is about, the action it describes), as the help shows them."""
    shown = help_text(Translator(locale), WORDS).split("\n")[1:]  # after the header
    assert len(shown) == len(HELPED)
    return [
        (re.split("[:：]", line.removeprefix("• "), maxsplit=1)[0], action.name)
        for line, action in zip(shown, HELPED, strict=True)
    ]


def route(said: str) -> tuple[str, str]:
    found = WORDS.resolve(Inbound(channel="console", external_id="ann", text=said))
    return found.action, found.args


@pytest.mark.parametrize("locale", LOCALES)
def test_every_help_line_typed_back_reaches_its_action(locale: str) -> None:
    lines = help_lines(locale)

    assert [route(label) for label, _ in lines] == [(action, "") for _, action in lines]
    assert [route(f"• {label}") for label, _ in lines] == [(action, "") for _, action in lines]


@pytest.mark.parametrize("locale", LOCALES)
def test_every_menu_label_typed_back_reaches_its_action(locale: str) -> None:
    buttons = menu_buttons(Translator(locale), WORDS)

    assert [route(b.label) for b in buttons] == [(WORDS.menu_keys[b.action], "") for b in buttons]
    assert all(WORDS.menu_keys[b.action] != UNKNOWN for b in buttons)


def test_the_lines_named_in_the_issue() -> None:
    assert route("My vouchers") == ("vouchers", "")
    assert route("我的券") == ("vouchers", "")
    assert route("Points mall") == ("rewards", "")
    assert route("Make up a missed check-in") == ("makeup", "")
    assert route("補簽漏掉的一天") == ("makeup", "")


@pytest.mark.parametrize("locale", LOCALES)
async def test_no_help_line_typed_back_gets_didnt_understand(chat, locale: str) -> None:
    refusal = Translator(locale)(DIDNT_UNDERSTAND)
    answers = []
    for n, (label, _) in enumerate(help_lines(locale)):
        reply = await chat(f"m{n}", locale_hint=locale).say(label)
        answers.append((label, reply.text.split("\n")[0] if reply is not None else None))

    assert [(label, first) for label, first in answers if first in (None, refusal)] == []
