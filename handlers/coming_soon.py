"""The SPEC's actions that this release does not have yet: they say so instead of failing.

Each moves to its own feature module (with its words) when it is built.
"""

from __future__ import annotations

from typing import Any

from bot.core.context import Context
from bot.core.i18n import N_
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from handlers.help import with_help

router = Router("coming-soon")

NOT_BUILT: dict[str, dict[str, Any]] = {}


async def coming_soon(msg: Inbound, ctx: Context) -> Reply:
    """Features of the SPEC not built yet: said so, with the help."""
    return with_help(ctx, N_("This feature is coming soon."))


for _name, _words in NOT_BUILT.items():
    router.action(_name, commands=(_name,), **_words)(coming_soon)
