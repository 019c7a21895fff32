"""`memberbot admin campaign create|list|show`: messages to a segment of members."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from bot.admin import campaigns
from bot.admin.fields import CHANNELS
from bot.cli.progress import Bar
from bot.core.context import Services
from bot.settings import LOCALES


def _locale_text(raw: str) -> tuple[str, str]:
    locale, sep, text = raw.partition("=")
    if not sep or locale not in LOCALES:
        raise argparse.ArgumentTypeError(
            f"expected LOCALE=TEXT with LOCALE one of {', '.join(LOCALES)}, not {raw[:40]!r}"
        )
    return locale, text.replace("\\n", "\n")


def add(areas: Any) -> None:
    area = areas.add_parser(
        "campaign",
        help="messages to a segment of members",
        description="Campaigns: a message per language to the members of a segment (every "
        "filter given must match; none: every member), now or at a time, through the outbox "
        "(muted members get none, quiet hours are waited out).",
    )
    actions = area.add_subparsers(dest="action_name", required=True, metavar="ACTION")
    create_cmd = actions.add_parser("create", help="create (and, unless --at, send) a campaign")
    create_cmd.add_argument(
        "--text",
        action="append",
        type=_locale_text,
        default=[],
        metavar="LOCALE=TEXT",
        help=f"the message in one language ({', '.join(LOCALES)}); repeat for each; \\n for "
        "a new line (required unless --preview)",
    )
    create_cmd.add_argument("--name", default="", help="a name for your records")
    create_cmd.add_argument(
        "--tier", action="append", default=[], help="members of this tier (repeat for several)"
    )
    create_cmd.add_argument("--community", help="members of this community (slug)")
    create_cmd.add_argument("--channel", choices=CHANNELS, help="members with an account there")
    create_cmd.add_argument(
        "--dormant-days", type=int, metavar="N", help="no check-in nor order for N days"
    )
    create_cmd.add_argument("--birthday-month", type=int, metavar="M", help="born in month M")
    create_cmd.add_argument(
        "--top-spend-percent", type=int, metavar="P", help="the top P %% by spend in the last year"
    )
    create_cmd.add_argument(
        "--reward-points", type=int, default=0, metavar="N", help="points given to each recipient"
    )
    create_cmd.add_argument(
        "--reward-voucher",
        metavar="SLUG",
        help="a voucher of this points-mall reward given to each recipient (from its stock)",
    )
    create_cmd.add_argument(
        "--at",
        metavar="TIME",
        help="send later: 'YYYY-MM-DD HH:MM' local time (MEMBERBOT_TIMEZONE) or ISO 8601",
    )
    create_cmd.add_argument(
        "--preview", action="store_true", help="only count the recipients; create nothing"
    )
    create_cmd.set_defaults(action=create)
    list_cmd = actions.add_parser("list", help="the newest campaigns with their results")
    list_cmd.add_argument("--limit", default="20", help="how many (1 to 500, default 20)")
    list_cmd.set_defaults(action=listing)
    show_cmd = actions.add_parser("show", help="one campaign and its results")
    show_cmd.add_argument("id", help="the campaign's number")
    show_cmd.set_defaults(action=show)


def _segment(args: argparse.Namespace) -> dict[str, object]:
    segment = {
        "tier": args.tier or None,
        "community": args.community,
        "channel": args.channel,
        "dormant_days": args.dormant_days,
        "birthday_month": args.birthday_month,
        "top_spend_percent": args.top_spend_percent,
    }
    return {k: v for k, v in segment.items() if v is not None}


def _when(services: Services, raw: str | None) -> str | None:
    """Local 'YYYY-MM-DD HH:MM' made ISO 8601 with the deployment's zone; ISO kept as given."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return raw  # refused, by name, by the action
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=services.settings.tz)
    return moment.isoformat()


async def create(services: Services, args: argparse.Namespace) -> list[str]:
    data: dict[str, object] = {"segment": _segment(args)}
    if args.preview:
        asked = {"dry_run": True, "reward_voucher": args.reward_voucher}
        answer, _ = await campaigns.create(services, data | asked)
        if "reward_voucher" not in answer:
            return [f"{answer['recipients']} recipients"]
        left = answer["vouchers_left"]
        stock = "unlimited" if left is None else f"{left} left"
        return [
            f"{answer['recipients']} recipients; vouchers of {answer['reward_voucher']}: {stock}"
        ]
    data |= {
        "texts": dict(args.text),
        "name": args.name,
        "reward_points": args.reward_points,
        "reward_voucher": args.reward_voucher,
        "send_at": _when(services, args.at),
    }
    bar = Bar("queuing")
    try:
        answer, _ = await campaigns.create(services, data, bar)
    finally:
        bar.close()
    return [f"created campaign {answer['id']}", line(answer)]


async def listing(services: Services, args: argparse.Namespace) -> list[str]:
    found = await campaigns.listing(services, campaigns.page_size(args.limit))
    return [line(c) for c in found] or ["no campaigns"]


async def show(services: Services, args: argparse.Namespace) -> list[str]:
    c = await campaigns.show(services, campaigns.campaign_id(args.id))
    texts = [f"  {locale}: {' '.join(text.split())}" for locale, text in c["texts"].items()]
    return [line(c), *texts]


def line(c: dict[str, Any]) -> str:
    segment = " ".join(f"{k}={v}" for k, v in c["segment"].items()) or "everyone"
    return (
        f"{c['id']} {c['name']} {c['state']} send_at={c['send_at']} segment: {segment} "
        f"reward_points={c['reward_points']} reward_voucher={c['reward_voucher'] or '-'} "
        f"recipients={c['recipients']} sent={c['sent']} pending={c['pending']} "
        f"failed={c['failed']} opted_out={c['opted_out']} unreachable={c['unreachable']} "
        f"redeemed={c['redeemed']}"
    )
