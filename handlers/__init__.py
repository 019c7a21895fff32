"""Channel-agnostic capabilities; each module owns one `Router`, combined here."""

from handlers import checkin, communities, help, invites, link, points, profile, tiers
from handlers.help import unknown

ROUTERS = [
    help.router,
    checkin.router,
    points.router,
    tiers.router,
    link.router,
    profile.router,
    invites.router,
    communities.router,
]
FALLBACK = unknown

__all__ = ["FALLBACK", "ROUTERS"]
