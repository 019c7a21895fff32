"""The SPEC's actions that this release does not have yet: they say so instead of failing.

Each moves to its own feature module (with its words) when it is built: delete its entry here
(an entry left behind does no harm: the built action and its words win over a placeholder).
None has a label, help line or command summary: menus and help show only what works.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.core.context import Context
from bot.core.i18n import N_
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from handlers.help import with_help

router = Router("coming-soon")
log = logging.getLogger("memberbot.coming_soon")

# Every command of the SPEC is built; a new one named there before it is built goes here.
NOT_BUILT: dict[str, dict[str, Any]] = {}


async def coming_soon(msg: Inbound, ctx: Context) -> Reply:
    """Features of the SPEC not built yet: said so, with what the member wrote, and the help.

    What they wrote is logged, so the shop can see what members asked for meanwhile."""
    written = msg.text.strip()
    log.info("coming soon action=%s member=%s text=%r", ctx.action, ctx.me.id, written[:500])
    first = ctx.t(N_("This feature is coming soon."))
    if written and msg.args:
        first += "\n" + ctx.t(N_("I noted what you wrote: “{text}”"), text=written[:200])
    return with_help(ctx, first)


for _name, _words in NOT_BUILT.items():
    router.action(_name, commands=(_name,), placeholder=True, **_words)(coming_soon)
