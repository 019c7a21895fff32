"""`memberbot admin member show|ledger|points`: one member, their ledger, an adjustment."""

from __future__ import annotations

import argparse
from typing import Any

from bot.admin import birthdays, members
from bot.admin.fields import CHANNELS
from bot.core.context import Services


def _member_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("channel", choices=CHANNELS, help="the member's app")
    cmd.add_argument(
        "external_id",
        help="the member's id in that app: WeChat openid, Telegram numeric user id, "
        "or console name",
    )


def add(areas: Any) -> None:
    area = areas.add_parser(
        "member", help="one member: balance, ledger, point adjustments", description="A member."
    )
    actions = area.add_subparsers(dest="action_name", required=True, metavar="ACTION")
    show_cmd = actions.add_parser("show", help="points, growth, tier, streak, accounts")
    _member_arguments(show_cmd)
    show_cmd.set_defaults(action=show)
    ledger_cmd = actions.add_parser("ledger", help="ledger entries, newest first")
    _member_arguments(ledger_cmd)
    ledger_cmd.add_argument("--limit", default="20", help="how many (1 to 1000, default 20)")
    ledger_cmd.set_defaults(action=ledger)
    points_cmd = actions.add_parser(
        "points",
        help="add (or, negative, take) points, once per --key",
        description="Add points (a lot that expires like earned points) or take them "
        "(never below zero). The reason is shown to the member in their ledger. Running it "
        "again with the same --key changes nothing.",
    )
    _member_arguments(points_cmd)
    points_cmd.add_argument("amount", type=int, metavar="AMOUNT", help="e.g. 100 or -30")
    points_cmd.add_argument("--reason", required=True, help="1 to 64 characters (required)")
    points_cmd.add_argument(
        "--key", required=True, help="your id for this adjustment, e.g. a ticket number (required)"
    )
    points_cmd.set_defaults(action=adjust)
    birthday_cmd = actions.add_parser(
        "birthday",
        help="correct a member's birthday (audited)",
        description="Set a member's birthday whatever they set (members can set theirs only "
        "once). Logged as an audit line naming --by.",
    )
    _member_arguments(birthday_cmd)
    birthday_cmd.add_argument("birthday", metavar="MM-DD", help="e.g. 05-20, or - to clear it")
    birthday_cmd.add_argument("--by", required=True, help="who corrects it, for the audit line")
    birthday_cmd.set_defaults(action=correct_birthday)


async def show(services: Services, args: argparse.Namespace) -> list[str]:
    m = await members.member_json(services, args.channel, args.external_id)
    accounts = ", ".join(f"{i['channel']}:{i['external_id']}" for i in m["identities"])
    return [
        f"member {m['id']} ({accounts}) points={m['points']} growth={m['growth']} "
        f"tier={m['tier']} streak={m['streak']} invite_code={m['invite_code']} "
        f"locale={m['locale']} birthday={m['birthday'] or '-'} created_at={m['created_at']}"
    ]


async def ledger(services: Services, args: argparse.Namespace) -> list[str]:
    limit = members.page_size(args.limit)
    entries = await members.ledger_page(services, args.channel, args.external_id, limit)
    return [
        f"{e['created_at']} {e['kind']} {e['amount']:+d} {e['reason']} (key {e['idempotency_key']})"
        for e in entries
    ] or ["no ledger entries"]


async def adjust(services: Services, args: argparse.Namespace) -> list[str]:
    data = {"amount": args.amount, "reason": args.reason, "idempotency_key": args.key}
    done = await members.adjust_points(services, args.channel, args.external_id, data)
    if not done["applied"]:
        return [f"already applied under --key {args.key}; balance {done['balance']}"]
    return [f"adjusted {done['amount']:+d} points; balance {done['balance']}"]


async def correct_birthday(services: Services, args: argparse.Namespace) -> list[str]:
    wanted = None if args.birthday == "-" else args.birthday
    done = await birthdays.correct(
        services, args.channel, args.external_id, {"birthday": wanted, "by": args.by}
    )
    return [f"birthday {done['previous'] or '-'} -> {done['birthday'] or '-'} (by {args.by})"]
