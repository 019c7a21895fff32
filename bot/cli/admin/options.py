"""Option types shared by the `memberbot admin` subjects: what argparse turns a word into."""

from __future__ import annotations

import argparse

from bot.settings import LOCALES


def locale_name(raw: str) -> tuple[str, str]:
    """`--name LOCALE=NAME` (a community's, a reward's)."""
    locale, sep, name = raw.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected LOCALE=NAME such as en=Coffee, not {raw!r}")
    if locale not in LOCALES:
        raise argparse.ArgumentTypeError(
            f"unknown language {locale!r} in {raw!r}: use {', '.join(LOCALES)}"
        )
    return locale, name


def whole(raw: str) -> int:
    """A whole number, or the one-line reason it is not."""
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
