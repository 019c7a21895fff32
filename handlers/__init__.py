"""Channel-agnostic capabilities; each module owns one `Router`, combined here.

The order is the order of the help text, the menu buttons and Telegram's command list.
"""

from collections.abc import Awaitable, Callable

from bot.core.context import Services
from handlers import (
    badges,
    campaigns,
    checkin,
    coming_soon,
    communities,
    complaints,
    flashsale_dialog,
    flashsale_engine,
    flashsales,
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
    privacy,
    profile,
    rewards,
    staff_desk,
    tasks,
    ticket_deadlines,
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
    rewards.router,
    lottery.router,
    tasks.router,
    makeup.router,
    badges.router,
    coming_soon.router,
    complaints.router,
    link.router,
    profile.router,
    nudges.router,
    privacy.router,
    help.router,
    groups.router,
    presence.router,
    staff_desk.router,
    staff_desk.posts,
]
FALLBACK = unknown
HOOKS: list[tuple[str, Hook]] = [
    ("deadlines", campaigns.hook),
    ("deadlines", ticket_deadlines.hook),
    ("deadlines", rewards.expire_vouchers),
    ("deadlines", gifts.give_gifts),
    ("flashsales", flashsales.hook),
]
# Written with a won claim: the first flash-sale win's badge.
flashsale_engine.WIN_BADGES.append(
    flashsale_engine.WinBadge(badges.FIRST_FLASH_SALE, badges.flash_win_note)
)

__all__ = ["FALLBACK", "HOOKS", "ROUTERS", "Hook"]
