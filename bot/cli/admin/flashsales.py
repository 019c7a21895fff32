"""`memberbot admin flashsale create|list|show|cancel`."""

from __future__ import annotations

import argparse
from typing import Any

from bot.admin import flashsales
from bot.cli.admin.options import whole
from bot.core.context import Services
from storage.flashsales import STATES


def add(areas: Any) -> None:
    area = areas.add_parser(
        "flashsale",
        help="community flash sales",
        description="Flash sales in a community: limited stock, a per-member limit, a window.",
    )
    actions = area.add_subparsers(dest="action_name", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="post a flash sale")
    create.add_argument("community", help="the community's slug")
    create.add_argument("title", help="what is sold (at most 64 characters)")
    create.add_argument("--price", required=True, help='what the member pays, e.g. "99.50"')
    create.add_argument("--stock", required=True, type=whole, help="units on sale")
    create.add_argument(
        "--per-member-limit",
        "--limit",
        dest="limit",
        type=whole,
        default=1,
        help="units per member (default 1)",
    )
    create.add_argument(
        "--start",
        default=None,
        help="ISO 8601 time with a zone, e.g. 2026-03-10T20:00+08:00 (default: now)",
    )
    create.add_argument("--minutes", required=True, type=whole, help="how long it runs")
    create.add_argument("--min-tier", default=None, metavar="TIER", help="lowest tier allowed")
    create.set_defaults(action=create_sale)
    listing = actions.add_parser("list", help="flash sales, latest start first")
    listing.add_argument("--state", choices=STATES, default=None, help="only this state")
    listing.set_defaults(action=list_sales)
    for name, run, text in (
        ("show", show, "one sale and its claims"),
        ("cancel", cancel, "stop a sale"),
    ):
        cmd = actions.add_parser(name, help=text)
        cmd.add_argument("code", help="the sale's 6-character code")
        cmd.set_defaults(action=run)


async def create_sale(services: Services, args: argparse.Namespace) -> list[str]:
    data: dict[str, object] = {
        "community": args.community,
        "title": args.title,
        "price": args.price,
        "stock": args.stock,
        "per_member_limit": args.limit,
        "duration_minutes": args.minutes,
    }
    if args.start is not None:
        data["starts_at"] = args.start
    if args.min_tier is not None:
        data["min_tier"] = args.min_tier
    sale = await flashsales.create_sale(services, data)
    return [f"created flash sale {sale['code']}", line(sale)]


async def list_sales(services: Services, args: argparse.Namespace) -> list[str]:
    found = await flashsales.list_sales(services, args.state)
    return [line(s) for s in found] or ["no flash sales"]


async def show(services: Services, args: argparse.Namespace) -> list[str]:
    sale = await flashsales.get_sale(services, args.code)
    claims = await flashsales.sale_claims(services, args.code)
    return [
        line(sale),
        *(
            f"  {c['claim_code']} member={c['member_id']} at={c['claimed_at']} "
            f"used={'yes' if c['used'] else 'no'}"
            for c in claims
        ),
    ]


async def cancel(services: Services, args: argparse.Namespace) -> list[str]:
    sale = await flashsales.cancel_sale(services, args.code)
    return [f"cancelled flash sale {sale['code']}", line(sale)]


def line(sale: dict[str, Any]) -> str:
    return (
        f"{sale['code']} {sale['state']} community={sale['community']} title={sale['title']!r} "
        f"price={sale['price']} claimed={sale['claimed']}/{sale['stock']} "
        f"limit={sale['per_member_limit']} min_tier={sale['min_tier'] or '-'} "
        f"starts_at={sale['starts_at']} ends_at={sale['ends_at']}"
    )
