"""Channel-agnostic capabilities; each module owns one `Router`, combined here.

The order is the order of the help text, the menu buttons and Telegram's command list.
"""

from handlers import (
    checkin,
    coming_soon,
    communities,
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

ROUTERS = [
    checkin.router,
    points.router,
    tiers.router,
    invites.router,
    communities.router,
    coming_soon.router,
    link.router,
    profile.router,
    nudges.router,
    help.router,
    groups.router,
    presence.router,
]
FALLBACK = unknown

__all__ = ["FALLBACK", "ROUTERS"]
