"""The Official Account's custom menu: CLICK buttons carrying the actions' menu keys.

The entries and their labels are the actions' own (see bot/core/router.py); this module
only lays them out as WeChat allows: three columns, at most five entries under each.
"""

from __future__ import annotations

from typing import Any

from bot.core.i18n import N_, Translator
from bot.core.router import Vocabulary

# Which menu keys go where: the first stands alone, the others are grouped under a title.
LAYOUT: tuple[tuple[str | None, tuple[str, ...]], ...] = (
    (None, ("CHECKIN",)),
    (N_("Me"), ("POINTS", "TIER", "INVITE")),
    (N_("More"), ("COMMUNITIES", "REWARDS", "COMPLAIN", "HELP")),
)
HELP_LABEL = N_("Help")


def custom_menu(t: Translator, words: Vocabulary) -> dict[str, Any]:
    """Labels short enough for WeChat's limit (4 Chinese characters in zh_CN)."""
    labels = {a.menu: a.label for a in words.actions.values() if a.menu and a.label}
    labels["HELP"] = HELP_LABEL

    def click(key: str) -> dict[str, str]:
        return {"type": "click", "name": t(labels[key]), "key": key}

    columns: list[dict[str, Any]] = []
    for title, keys in LAYOUT:
        present = [key for key in keys if key in labels]
        if title is None:
            columns.extend(click(key) for key in present)
        elif present:
            columns.append({"name": t(title), "sub_button": [click(key) for key in present]})
    return {"button": columns}
