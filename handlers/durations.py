"""Waits said in real units: "an hour", "10 minutes", never "a few minutes" for an hour."""

from __future__ import annotations

from bot.core.i18n import N_, Translator


def wait_text(t: Translator, minutes: int) -> str:
    """`minutes` as a member reads it: whole hours as hours, else minutes."""
    if minutes >= 60 and minutes % 60 == 0:
        hours = minutes // 60
        return t(N_("an hour")) if hours == 1 else t(N_("{n} hours"), n=hours)
    return t(N_("a minute")) if minutes == 1 else t(N_("{n} minutes"), n=minutes)
