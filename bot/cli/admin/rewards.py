"""`memberbot admin reward add|set|list|show|retire` and `memberbot admin voucher
show|use|cancel`: the points mall and the till's calls from the terminal."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.admin import rewards
from bot.cli.admin.options import locale_name, whole
from bot.cli.runtime import Failed
from bot.core.context import Services

OPTIONS = ("kind", "cost", "stock", "per_member_limit", "min_tier", "valid_days", "active")


def _optional_int(raw: str) -> int | None:
    return None if raw in ("", "none", "unlimited") else whole(raw)


def _prizes(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            'expected JSON such as [{"slug": "mug", "names": {"en": "Mug"}, "weight": 1}]'
        ) from None


def _add_saving(actions: Any, action: str, text: str) -> None:
    cmd = actions.add_parser(action, help=text, description=text.capitalize() + ".")
    cmd.add_argument("slug", help="the reward's id: 2 to 32 characters of a-z, 0-9, - and _")
    cmd.add_argument(
        "--name",
        action="append",
        type=locale_name,
        default=[],
        required=action == "add",
        metavar="LOCALE=NAME",
        help="name in one language; repeat for each language",
    )
    keep = argparse.SUPPRESS  # an option not given is not changed
    cmd.add_argument("--kind", default=keep, choices=("voucher", "lottery"))
    cmd.add_argument("--cost", type=int, default=keep, required=action == "add", help="points")
    cmd.add_argument("--stock", type=_optional_int, default=keep, help="left; '' unlimited")
    cmd.add_argument("--per-member-limit", type=_optional_int, default=keep, help="'' for no limit")
    cmd.add_argument("--min-tier", default=keep, metavar="TIER")
    cmd.add_argument("--valid-days", type=int, default=keep, help="how long a voucher is valid")
    cmd.add_argument("--prizes", type=_prizes, default=keep, metavar="JSON", help="lottery prizes")
    if action == "set":
        cmd.add_argument("--active", action=argparse.BooleanOptionalAction, default=keep)
    cmd.set_defaults(action=save)


def add(areas: Any) -> None:
    reward = areas.add_parser("reward", help="the points mall's rewards and lotteries")
    actions = reward.add_subparsers(dest="action_name", required=True, metavar="ACTION")
    _add_saving(actions, "add", "create a reward")
    _add_saving(actions, "set", "change the options given, leave the others")
    actions.add_parser("list", help="every reward, retired ones too").set_defaults(action=listing)
    for name, helped, run in (
        ("show", "one reward", show),
        ("retire", "take out of the mall", retire),
    ):
        cmd = actions.add_parser(name, help=helped)
        cmd.add_argument("slug")
        cmd.set_defaults(action=run)
    voucher = areas.add_parser("voucher", help="check, use or cancel a voucher (the till)")
    calls = voucher.add_subparsers(dest="action_name", required=True, metavar="ACTION")
    for name, helped, run in (
        ("show", "the voucher and its state", voucher_show),
        ("use", "use it (once)", voucher_use),
        ("cancel", "cancel: points and stock given back", voucher_cancel),
    ):
        cmd = calls.add_parser(name, help=helped)
        cmd.add_argument("code")
        cmd.set_defaults(action=run)


async def save(services: Services, args: argparse.Namespace) -> list[str]:
    data: dict[str, object] = {k: getattr(args, k) for k in OPTIONS if k in args}
    if "prizes" in args:
        data["prizes"] = args.prizes
    adding = args.action_name == "add"
    if args.name:
        names = {} if adding else dict((await rewards.get_reward(services, args.slug))["names"])
        data["names"] = names | dict(args.name)
    if not data and not adding:
        raise Failed("nothing to change: give at least one option", 2)
    saved, _ = await rewards.save_reward(services, args.slug, data, exists=not adding)
    return [f"{'created' if adding else 'updated'} reward {saved['slug']}", line(saved)]


async def listing(services: Services, _args: argparse.Namespace) -> list[str]:
    return [line(r) for r in await rewards.list_rewards(services)] or ["no rewards"]


async def show(services: Services, args: argparse.Namespace) -> list[str]:
    return [line(await rewards.get_reward(services, args.slug))]


async def retire(services: Services, args: argparse.Namespace) -> list[str]:
    saved = await rewards.retire_reward(services, args.slug)
    return [f"retired reward {saved['slug']}", line(saved)]


async def voucher_show(services: Services, args: argparse.Namespace) -> list[str]:
    return [voucher_line(await rewards.get_voucher(services, args.code))]


async def voucher_use(services: Services, args: argparse.Namespace) -> list[str]:
    return ["used", voucher_line(await rewards.use_voucher(services, args.code))]


async def voucher_cancel(services: Services, args: argparse.Namespace) -> list[str]:
    return ["cancelled", voucher_line(await rewards.cancel_voucher(services, args.code))]


def line(r: dict[str, Any]) -> str:
    state = "active" if r["active"] else "retired"
    stock = "unlimited" if r["stock"] is None else r["stock"]
    names = ", ".join(f"{locale}={name}" for locale, name in r["names"].items())
    text = (
        f"{r['slug']} {r['kind']} {state} cost={r['cost']} stock={stock} "
        f"redeemed={r['redeemed']} per_member_limit={r['per_member_limit'] or '-'} "
        f"min_tier={r['min_tier']} valid_days={r['valid_days']} names: {names}"
    )
    for prize in r.get("prizes", []):
        left = "unlimited" if prize["stock"] is None else prize["stock"]
        text += (
            f"\n  prize {prize['slug']} weight={prize['weight']} stock={left} won={prize['won']}"
        )
    return text


def voucher_line(v: dict[str, Any]) -> str:
    return (
        f"{v['code']} reward={v['reward']} member={v['member_id']} state={v['state']} "
        f"expires_at={v['expires_at']}"
    )
