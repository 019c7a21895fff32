"""The catalogs keep up with the source: every marked string is extracted, every locale
translates every message, placeholders survive translation, and the Translator serves them."""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from bot.core.i18n import Translator

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "locales"
LOCALES = ("zh_CN", "zh_TW", "en")


@cache
def template() -> Catalog:
    with (LOCALE_DIR / "messages.pot").open("rb") as fh:
        return read_po(fh)


@cache
def catalog(locale: str) -> Catalog:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def template_ids() -> list[str]:
    return [m.id for m in template() if m.id]


def source_ids() -> set[str]:
    """What `pybabel extract -F babel.cfg -k N_` finds for N_ in bot/ and handlers/."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, "babel.cfg")
    found = extract_from_dir(ROOT, method_map, options_map, keywords={"N_": None})
    return {message for _, _, message, *_ in found if message}


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def test_template_holds_every_marked_string_of_the_source() -> None:
    missing = source_ids() - set(template_ids())
    assert not missing, f"run `make extract`: messages.pot lacks {sorted(missing)}"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_template_message_is_translated(locale: str) -> None:
    po = catalog(locale)
    entries = {msgid: po.get(msgid) for msgid in template_ids()}
    absent = [msgid for msgid, m in entries.items() if m is None]
    empty = [msgid for msgid, m in entries.items() if m is not None and not m.string]
    fuzzy = [msgid for msgid, m in entries.items() if m is not None and m.fuzzy]
    assert (absent, empty, fuzzy) == ([], [], []), f"{locale}: (absent, empty, fuzzy) msgids"


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_header_is_not_fuzzy_so_compile_keeps_it(locale: str) -> None:
    """A .po without its header (or with `#, fuzzy` on it) is skipped whole by `pybabel compile`."""
    assert not catalog(locale).fuzzy


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_the_placeholders_of_their_msgid(locale: str) -> None:
    changed = {
        m.id: (sorted(placeholders(m.id)), sorted(placeholders(m.string)))
        for m in catalog(locale)
        if m.id and m.string and placeholders(m.id) != placeholders(m.string)
    }
    assert not changed, f"{locale}: msgid -> (msgid placeholders, msgstr placeholders)"


def test_english_catalog_repeats_the_source_text() -> None:
    differing = {m.id: m.string for m in catalog("en") if m.id and m.string != m.id}
    assert not differing


LANGUAGE_CONFIRMATIONS = {
    "zh_CN": "语言已设置为简体中文。",
    "zh_TW": "語言已設定為繁體中文。",
    "en": "Language set to English.",
}


@pytest.mark.parametrize("locale", LOCALES)
def test_language_confirmation_names_the_chosen_language(locale: str) -> None:
    assert Translator(locale)("Language set to English.") == LANGUAGE_CONFIRMATIONS[locale]


def test_translator_fills_placeholders_after_translating() -> None:
    t = Translator("zh_TW")
    assert t("Your points: {balance}", balance=120) == "您的積分：120"
    assert t("{needed} more growth to {tier}", needed=300, tier="白銀") == (
        "再獲得 300 成長值即可升級為白銀會員"
    )
