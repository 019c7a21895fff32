"""`memberbot admin community add|set|list|archive`."""

from __future__ import annotations

import argparse
from typing import Any

from bot.admin import communities
from bot.admin.errors import Conflict, NotFound
from bot.cli.admin.options import locale_name, whole
from bot.cli.runtime import Failed
from bot.core.context import Services
from bot.settings import DEFAULT_TIERS, LOCALES

OPTIONS = ("tag", "min_tier", "telegram_chat_id", "wechat_qr", "description", "active")
TIERS = ", ".join(t.name for t in DEFAULT_TIERS)


def _url(raw: str) -> str | None:
    return raw or None


def _chat_id(raw: str) -> int | None:
    return whole(raw) if raw else None


def _add_saving(actions: Any, action: str, text: str) -> None:
    cmd = actions.add_parser(action, help=text, description=text.capitalize() + ".")
    cmd.add_argument("slug", help="the community's id: 2 to 32 characters of a-z, 0-9, - and _")
    cmd.add_argument(
        "--name",
        action="append",
        type=locale_name,
        default=[],
        required=action == "add",
        metavar="LOCALE=NAME",
        help=f"name in one language ({', '.join(LOCALES)}); repeat for each language"
        + (" (required)" if action == "add" else ""),
    )
    keep = argparse.SUPPRESS  # an option not given is not changed
    cmd.add_argument("--tag", default=keep, help="interest tag, e.g. coffee")
    cmd.add_argument(
        "--min-tier",
        default=keep,
        metavar="TIER",
        help=f"lowest tier that may join: {TIERS} (as named in the rules file; default: the first)",
    )
    cmd.add_argument(
        "--telegram-chat-id",
        type=_chat_id,
        default=keep,
        metavar="ID",
        help="the Telegram group's chat id (negative, e.g. -1001234567890); '' to clear",
    )
    cmd.add_argument(
        "--wechat-qr", type=_url, default=keep, metavar="URL", help="group QR URL; '' to clear"
    )
    cmd.add_argument("--description", default=keep, help="shown to members")
    if action == "add":
        cmd.add_argument(
            "--if-missing",
            action="store_true",
            help="if the community exists, leave it unchanged and exit 0 (for scripts)",
        )
    else:
        cmd.add_argument("--active", action=argparse.BooleanOptionalAction, default=keep)
    cmd.set_defaults(action=save)


def add(areas: Any) -> None:
    community = areas.add_parser(
        "community",
        help="interest communities",
        description="Interest communities: names per language, tier gate, Telegram group, "
        "WeChat group QR.",
    )
    actions = community.add_subparsers(dest="action_name", required=True, metavar="ACTION")
    _add_saving(actions, "add", "create a community")
    _add_saving(actions, "set", "change the options given, leave the others")
    actions.add_parser("list", help="every community, archived ones too").set_defaults(
        action=listing
    )
    archive = actions.add_parser("archive", help="hide from members; memberships are kept")
    archive.add_argument("slug", help="the community's id")
    archive.set_defaults(action=archived)


async def save(services: Services, args: argparse.Namespace) -> list[str]:
    data: dict[str, object] = {k: getattr(args, k) for k in OPTIONS if k in args}
    adding = args.action_name == "add"
    if args.name:
        names = (
            {} if adding else dict((await communities.get_community(services, args.slug))["names"])
        )
        data["names"] = names | dict(args.name)
    if not data and not adding:
        raise Failed("nothing to change: give at least one option", 2)
    try:
        saved, _ = await communities.save_community(services, args.slug, data, exists=not adding)
    except Conflict:
        if not adding or not await _exists(services, args.slug):
            raise
        if not args.if_missing:
            raise Failed(
                f"community {args.slug} already exists: change it with `memberbot admin "
                f"community set {args.slug} ...`, or add --if-missing to leave it as it is"
            ) from None
        kept = await communities.get_community(services, args.slug)
        return [f"community {args.slug} already exists; left unchanged", line(kept)]
    return [f"{'created' if adding else 'updated'} community {saved['slug']}", line(saved)]


async def _exists(services: Services, slug: str) -> bool:
    try:
        await communities.get_community(services, slug)
    except NotFound:
        return False
    return True


async def listing(services: Services, _args: argparse.Namespace) -> list[str]:
    return [line(c) for c in await communities.list_communities(services)] or ["no communities"]


async def archived(services: Services, args: argparse.Namespace) -> list[str]:
    saved = await communities.archive_community(services, args.slug)
    return [f"archived community {saved['slug']}", line(saved)]


def line(c: dict[str, Any]) -> str:
    state = "active" if c["active"] else "archived"
    chat_id = "-" if c["telegram_chat_id"] is None else c["telegram_chat_id"]
    names = ", ".join(f"{locale}={name}" for locale, name in c["names"].items())
    text = (
        f"{c['slug']} {state} min_tier={c['min_tier']} members={c['members']} "
        f"tag={c['tag'] or '-'} telegram_chat_id={chat_id} wechat_qr={c['wechat_qr'] or '-'} "
        f"names: {names}"
    )
    description = " ".join(c["description"].split())
    return f"{text}\n  description: {description}" if description else text
