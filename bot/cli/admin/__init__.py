"""`memberbot admin ...`: the operator API's actions from the terminal (bot.admin), with
refusals in command-line words: exit 1 refused, 2 bad usage."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from typing import Any

from bot.admin.errors import AdminError, Invalid
from bot.cli.admin import (
    campaigns,
    communities,
    flashsales,
    invites,
    members,
    rewards,
    roles,
    tickets,
    transfer,
)
from bot.cli.runtime import Failed, open_core
from bot.core.messages import clean_text
from bot.settings import Settings

SUBJECTS = (members, communities, roles, invites, campaigns, transfer, tickets, rewards, flashsales)
# API field names as the options that carry them on the command line.
OPTION_OF = {
    "names": "--name",
    "min_tier": "--min-tier",
    "telegram_chat_id": "--telegram-chat-id",
    "wechat_qr": "--wechat-qr",
    "tag": "--tag",
    "description": "--description",
    "active": "--active",
    "reason": "--reason",
    "idempotency_key": "--key",
    "limit": "--limit",
    "status": "--status",
    "community": "--community",
    "texts": "--text",
    "reward_points": "--reward-points",
    "reward_voucher": "--reward-voucher",
    "send_at": "--at",
    "segment.tier": "--tier",
    "segment.community": "--community",
    "segment.dormant_days": "--dormant-days",
    "segment.birthday_month": "--birthday-month",
    "segment.top_spend_percent": "--top-spend-percent",
    "by": "--by",
    "cost": "--cost",
    "stock": "--stock",
    "per_member_limit": "--per-member-limit",
    "valid_days": "--valid-days",
    "kind": "--kind",
    "prizes": "--prizes",
    "price": "--price",
    "starts_at": "--start",
    "duration_minutes": "--minutes",
}


def add(commands: Any) -> None:
    admin = commands.add_parser(
        "admin",
        help="operator tasks (MEMBERBOT_DATABASE_URL)",
        description="Operator tasks on MEMBERBOT_DATABASE_URL: the same actions as the "
        "operator API. Members are named by app and id: CHANNEL is wechat, telegram or "
        "console; EXTERNAL_ID is the WeChat openid, the Telegram numeric user id, or the "
        "console name (memberbot shell --as NAME). Exit status: 0 done, 1 refused, 2 bad usage.",
    )
    areas = admin.add_subparsers(dest="area", required=True)
    for subject in SUBJECTS:
        subject.add(areas)
    admin.set_defaults(run=run)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    logging.getLogger().setLevel(logging.WARNING)
    async with open_core(settings) as core:
        try:
            lines = await args.action(core.services, args)
        except Invalid as exc:
            raise Failed(in_cli_words(exc), 2) from None
        except AdminError as exc:
            raise Failed(clean_text(exc.message), 1) from None
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


def in_cli_words(exc: Invalid) -> str:
    """The API's reason with its field named as the option that sets it."""
    message = clean_text(exc.message)
    message = re.sub(r"^names\.(\w+)", r"--name \1=NAME", message)
    option = OPTION_OF.get(exc.field)
    if option is not None and message.startswith(exc.field):
        message = option + message[len(exc.field) :]
    return message.replace(" or null", " or '' (none)")
