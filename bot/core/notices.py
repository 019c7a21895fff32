"""Short texts a channel needs around a reply, kept in the core with the other product text."""

from __future__ import annotations

from bot.core.i18n import N_, Translator


def sent_privately(t: Translator, sent: bool) -> str:
    """What a group is told when a member's own answer went (or could not go) to their DMs."""
    if sent:
        return t(N_("I sent you the answer in a private chat."))
    return t(N_("Please open a private chat with me first, then ask again."))
