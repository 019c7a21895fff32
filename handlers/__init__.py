"""Channel-agnostic capabilities; each module owns one `Router`, combined here.

The order is the order of the help text, the menu buttons and Telegram's command list.
"""

from collections.abc import Awaitable, Callable

from bot.core.context import Services
from handlers import (
    checkin,
    coming_soon,
    communities,
    flashsale_dialog,
    flashsales,
    groups,
    help,
    invites,
    link,
    nudges,
    points,
    presence,
    profile,
    tiers,
)
from handlers.help import unknown

# Work a feature attaches to a scheduled job ("deadlines": every minute, "flashsales": every
# minute): each returns how many things it did. The composition root hands them to the jobs.
Hook = Callable[[Services], Awaitable[int]]

ROUTERS = [
    checkin.router,
    points.router,
    tiers.router,
    invites.router,
    communities.router,
    flashsales.router,
    flashsale_dialog.router,
    coming_soon.router,
    link.router,
    profile.router,
    nudges.router,
    help.router,
    groups.router,
    presence.router,
]
FALLBACK = unknown
HOOKS: list[tuple[str, Hook]] = [("flashsales", flashsales.hook)]

__all__ = ["FALLBACK", "HOOKS", "ROUTERS", "Hook"]
