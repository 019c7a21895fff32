"""One word for one thing in each catalog (issue 16, item 12): a member reading 微信 in one reply
and WeChat in the next wonders whether they are two things."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from bot.core.i18n import LOCALE_DIR

# locale -> (the catalog's word, variants it must not use)
TERMS = {
    "zh_CN": [("微信", ("WeChat",)), ("账号", ("帐号", "帐户")), ("应用", ("App", "APP"))],
    "zh_TW": [
        ("微信", ("WeChat",)),
        ("帳號", ("賬號", "帐号", "账号")),
        ("App", ("應用程式", "应用")),
        ("群組", ("微信群：", "Telegram 群：")),
    ],
}


@pytest.mark.parametrize("locale", sorted(TERMS))
def test_each_catalog_uses_one_word_for_one_thing(locale: str) -> None:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        texts = [str(m.string) for m in read_po(fh, locale=locale) if m.id and m.string]

    mixed = [
        (word, variant, text)
        for word, variants in TERMS[locale]
        for variant in variants
        for text in texts
        if variant in text
    ]

    assert mixed == []


def test_zh_tw_names_wechat_as_zh_cn_does() -> None:
    with (LOCALE_DIR / "zh_TW" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="zh_TW")

    assert (
        catalog.get("Link your WeChat and Telegram accounts").string == "綁定微信與 Telegram 帳號"
    )
