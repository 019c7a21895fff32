"""The Official Account's custom menu: CLICK buttons carrying the SPEC menu keys."""

from __future__ import annotations

from typing import Any

from bot.core.i18n import N_, Translator


def _click(t: Translator, label: str, key: str) -> dict[str, str]:
    return {"type": "click", "name": t(label), "key": key}


def custom_menu(t: Translator) -> dict[str, Any]:
    """Three columns (WeChat's maximum), labels short enough for its 4-character limit."""
    return {
        "button": [
            _click(t, N_("Check in"), "CHECKIN"),
            {
                "name": t(N_("Me")),
                "sub_button": [
                    _click(t, N_("Points"), "POINTS"),
                    _click(t, N_("Tier"), "TIER"),
                    _click(t, N_("Invite"), "INVITE"),
                ],
            },
            {
                "name": t(N_("More")),
                "sub_button": [
                    _click(t, N_("Communities"), "COMMUNITIES"),
                    _click(t, N_("Rewards"), "REWARDS"),
                    _click(t, N_("Complain"), "COMPLAIN"),
                    _click(t, N_("Help"), "HELP"),
                ],
            },
        ]
    }
