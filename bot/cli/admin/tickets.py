"""`memberbot admin tickets list|show|reply|wait|resolve|assign`: the complaints desk."""

from __future__ import annotations

import argparse
from typing import Any

from bot.admin import tickets
from bot.admin.fields import CHANNELS
from bot.core.context import Services
from storage.tickets import STATES


def add(areas: Any) -> None:
    area = areas.add_parser(
        "tickets",
        help="complaint tickets",
        description="Complaint tickets (numbers such as C-000123): read and work them.",
    )
    actions = area.add_subparsers(dest="action_name", required=True, metavar="ACTION")
    listing_cmd = actions.add_parser("list", help="tickets, the soonest deadline first")
    listing_cmd.add_argument("--state", choices=STATES)
    listing_cmd.set_defaults(action=listing)
    show_cmd = actions.add_parser("show", help="one ticket: conversation and audit trail")
    show_cmd.add_argument("number")
    show_cmd.set_defaults(action=show)
    for name, run, needs_text in (
        ("reply", reply, True),
        ("wait", wait, True),
        ("resolve", resolve, False),
    ):
        cmd = actions.add_parser(name, help=f"{name} (the member is told in their app)")
        cmd.add_argument("number")
        cmd.add_argument("text", nargs=None if needs_text else "?", default="")
        cmd.add_argument("--by", default="operator", help="your name, kept in the audit trail")
        cmd.set_defaults(action=run)
    assign_cmd = actions.add_parser("assign", help="give a ticket to a staff member")
    assign_cmd.add_argument("number")
    assign_cmd.add_argument("channel", choices=CHANNELS)
    assign_cmd.add_argument("external_id")
    assign_cmd.add_argument("--by", default="operator")
    assign_cmd.set_defaults(action=assign)


def line(t: dict[str, Any]) -> str:
    owner = t["assignee"]["name"] if t["assignee"] else "nobody"
    flags = " escalated" if t["escalated"] else ""
    score = f" score {t['score']}" if t["score"] is not None else ""
    return (
        f"{t['number']} {t['state']}{flags} {t['category']} member {t['member']} "
        f"owner {owner} due {t['first_response_due']}{score}"
    )


def detail(t: dict[str, Any]) -> list[str]:
    lines = [line(t)]
    lines += [f"  {m['at']} {m['from']}: {m['text']}" for m in t["messages"]]
    lines += [f"  {e['at']} [{e['actor']}] {e['action']}" for e in t["events"]]
    return lines


async def listing(services: Services, args: argparse.Namespace) -> list[str]:
    return [line(t) for t in await tickets.list_tickets(services, args.state)] or ["no tickets"]


async def show(services: Services, args: argparse.Namespace) -> list[str]:
    return detail(await tickets.show_ticket(services, args.number))


async def reply(services: Services, args: argparse.Namespace) -> list[str]:
    data = {"text": args.text, "by": args.by}
    return detail(await tickets.reply(services, args.number, data))


async def wait(services: Services, args: argparse.Namespace) -> list[str]:
    data = {"text": args.text, "by": args.by}
    return detail(await tickets.wait(services, args.number, data))


async def resolve(services: Services, args: argparse.Namespace) -> list[str]:
    data = {"text": args.text, "by": args.by}
    return detail(await tickets.resolve(services, args.number, data))


async def assign(services: Services, args: argparse.Namespace) -> list[str]:
    data = {"staff": {"channel": args.channel, "external_id": args.external_id}, "by": args.by}
    return detail(await tickets.assign(services, args.number, data))
