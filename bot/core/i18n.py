"""Translations from the gettext catalogs in locales/ (compiled in memory if no .mo exists)."""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

import locales
from bot.settings import LOCALES

LOCALE_DIR = Path(locales.__file__).parent
DOMAIN = "messages"


@cache
def translations(locale: str) -> gettext.NullTranslations:
    mo = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.mo"
    po = mo.with_suffix(".po")
    if not po.exists():
        return gettext.NullTranslations()
    # A .mo older than its .po (edited since `make catalogs`) would serve stale text.
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as fh:
            return gettext.GNUTranslations(fh)
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


class Term(str):
    """A placeholder's value that is itself a catalog word (a state, a category): translated
    with the message, in the same language (`t("{n} is {state}.", state=Term(N_("open")))`)."""


class Translator:
    """`t("Hello {name}", name=...)`: translate, then fill the named placeholders."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in LOCALES else "en"
        self._tr = translations(self.locale)

    def __call__(self, message: str, **params: object) -> str:
        text = self._tr.gettext(message)
        if not params:
            return text
        filled = {k: self._tr.gettext(v) if isinstance(v, Term) else v for k, v in params.items()}
        return text.format(**filled)


def pick_locale(chosen: str | None, hint: str | None, default: str) -> str:
    """The member's choice, else what their app says, else the deployment default."""
    if chosen in LOCALES:
        return chosen
    normalised = normalise_hint(hint)
    return normalised or default


def normalise_hint(hint: str | None) -> str | None:
    """Map an app's language tag (zh-hans, zh-TW, en-US, ...) to one of our locales."""
    if not hint:
        return None
    tag = hint.replace("_", "-").lower()
    if tag in ("zh-hant", "zh-tw", "zh-hk", "zh-mo") or tag.startswith("zh-hant"):
        return "zh_TW"
    if tag.startswith("zh"):
        return "zh_CN"
    if tag.startswith("en"):
        return "en"
    return "en"


def N_(message: str) -> str:
    """Mark a string for extraction without translating it here (translated where shown)."""
    return message
