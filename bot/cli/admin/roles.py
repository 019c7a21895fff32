"""`memberbot admin role grant|revoke|list`."""

from __future__ import annotations

import argparse
from typing import Any

from bot.admin import roles
from bot.admin.fields import CHANNELS
from bot.core.context import Services
from storage.roles import ROLES


def add(areas: Any) -> None:
    role = areas.add_parser(
        "role",
        help="admin, staff, community moderators",
        description="Roles: admin and staff act everywhere, a moderator in one community.",
    )
    actions = role.add_subparsers(dest="action_name", required=True, metavar="ACTION")
    for action, run in (("grant", grant), ("revoke", revoke)):
        cmd = actions.add_parser(action, help=f"{action} a role", description=f"{action} a role.")
        cmd.add_argument("role", choices=ROLES, help=", ".join(ROLES))
        cmd.add_argument("channel", choices=CHANNELS, help="the member's app")
        cmd.add_argument(
            "external_id",
            help="the member's id in that app: WeChat openid, Telegram numeric user id, "
            "or console name",
        )
        cmd.add_argument("--community", metavar="SLUG", help="required for moderator")
        cmd.set_defaults(action=run)
    actions.add_parser("list", help="every role granted").set_defaults(action=listing)


def _request(args: argparse.Namespace) -> dict[str, object]:
    return {
        "channel": args.channel,
        "external_id": args.external_id,
        "role": args.role,
        "community": args.community,
    }


async def grant(services: Services, args: argparse.Namespace) -> list[str]:
    held, granted = await roles.grant_role(services, _request(args))
    return [f"{'granted' if granted else 'already held'}: {line(held)}"]


async def revoke(services: Services, args: argparse.Namespace) -> list[str]:
    return [f"revoked: {line(await roles.revoke_role(services, _request(args)))}"]


async def listing(services: Services, _args: argparse.Namespace) -> list[str]:
    return [line(r) for r in await roles.list_roles(services)] or ["no roles granted"]


def line(r: dict[str, Any]) -> str:
    role = f"{r['role']} of {r['community']}" if r["community"] else r["role"]
    accounts = ", ".join(f"{i['channel']}:{i['external_id']}" for i in r["identities"])
    return f"{role}: member {r['member_id']} ({accounts})"
