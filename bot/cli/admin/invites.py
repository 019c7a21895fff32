"""`memberbot admin invites list|approve|reject`."""

from __future__ import annotations

import argparse
from typing import Any

from bot.admin import invites
from bot.admin.invites import InviteView
from bot.core.context import Services


def add(areas: Any) -> None:
    area = areas.add_parser(
        "invites",
        help="invites and the rewards held for review",
        description="Invites. Past an inviter's daily cap, rewards wait here for review.",
    )
    actions = area.add_subparsers(dest="action_name", required=True, metavar="ACTION")
    listing_cmd = actions.add_parser("list", help="invites in one state, newest first")
    listing_cmd.add_argument(
        "--status",
        default="review",
        choices=invites.STATUSES,
        help="review (default: held rewards), waiting (for the invitee's first check-in), "
        "rewarded, rejected or void",
    )
    listing_cmd.set_defaults(action=listing)
    for action, run in (("approve", approve), ("reject", reject)):
        cmd = actions.add_parser(action, help=f"{action} a held reward")
        cmd.add_argument(
            "invite_id", type=int, metavar="ID", help="the invite's number (#ID in `invites list`)"
        )
        cmd.set_defaults(action=run)


async def listing(services: Services, args: argparse.Namespace) -> list[str]:
    found = await invites.list_invites(services, args.status)
    return [line(v) for v in found] or [f"no invites with status {args.status}"]


async def approve(services: Services, args: argparse.Namespace) -> list[str]:
    decided = await invites.decide_invite(services, args.invite_id, approve=True)
    return [f"approved invite {decided.invite['id']}", line(decided)]


async def reject(services: Services, args: argparse.Namespace) -> list[str]:
    decided = await invites.decide_invite(services, args.invite_id, approve=False)
    return [f"rejected invite {decided.invite['id']}", line(decided)]


def _who(member_id: int, accounts: tuple[str, ...]) -> str:
    return f"{member_id} ({', '.join(accounts) or 'no account'})"


def line(view: InviteView) -> str:
    i = view.invite
    return (
        f"#{i['id']} {i['status']} inviter={_who(i['inviter_id'], view.inviter)} "
        f"invitee={_who(i['invitee_id'], view.invitee)} via={i['via']} "
        f"created_at={i['created_at']} reward_day={i['reward_day'] or '-'} "
        f"decided_at={i['decided_at'] or '-'}"
    )
