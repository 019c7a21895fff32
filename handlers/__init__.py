"""Channel-agnostic capabilities; each module owns one `Router`, combined here.

The order is the order of the help text, the menu buttons and Telegram's command list.
"""

from collections.abc import Awaitable, Callable

from bot.core.context import Services
from handlers import (
    badges,
    checkin,
    coming_soon,
    communities,
    gifts,
    groups,
    help,
    invites,
    link,
    lottery,
    makeup,
    nudges,
    points,
    presence,
    profile,
    rewards,
    tasks,
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
    rewards.router,
    lottery.router,
    tasks.router,
    makeup.router,
    badges.router,
    coming_soon.router,
    link.router,
    profile.router,
    nudges.router,
    help.router,
    groups.router,
    presence.router,
]
FALLBACK = unknown
HOOKS: list[tuple[str, Hook]] = [
    ("deadlines", rewards.expire_vouchers),
    ("deadlines", gifts.give_gifts),
]

__all__ = ["FALLBACK", "HOOKS", "ROUTERS", "Hook"]
