"""The `memberbot` command: serve | shell | db upgrade | wechat menu | admin."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import io
import logging
import sys
from collections.abc import Sequence
from typing import Any

from bot import operators
from bot.app import build_core
from bot.channels.console import run_shell
from bot.core.context import Services
from bot.core.messages import clean_text
from bot.settings import ConfigError, Settings, load_settings
from storage.db import Database
from storage.migrate import upgrade

log = logging.getLogger("memberbot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memberbot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server (webhooks, API, health, metrics)")
    serve.add_argument("--host", help="override MEMBERBOT_HTTP_HOST")
    serve.add_argument("--port", type=int, help="override MEMBERBOT_HTTP_PORT")
    shell = sub.add_parser("shell", help="chat with the bot in the terminal")
    shell.add_argument("--as", dest="name", help="who you are (default: your login name)")
    db = sub.add_parser("db", help="database tasks")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations")
    wechat = sub.add_parser("wechat", help="WeChat Official Account tasks")
    wechat_sub = wechat.add_subparsers(dest="wechat_command", required=True)
    wechat_sub.add_parser("menu", help="publish the custom menu (labels in zh_CN)")
    _add_admin(sub)
    return parser


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request URL at INFO, and a Bot API URL carries the bot's token.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()
    try:
        settings = load_settings()
        if args.command == "serve":
            return asyncio.run(_serve(settings, args.host, args.port))
        if args.command == "shell":
            logging.getLogger().setLevel(logging.WARNING)
            return asyncio.run(_shell(settings, args.name or _login_name()))
        if args.command == "wechat":
            return asyncio.run(_wechat_menu(settings))
        if args.command == "admin":
            logging.getLogger().setLevel(logging.WARNING)
            return asyncio.run(_admin(settings, args))
        return asyncio.run(_db_upgrade(settings))
    except ConfigError as exc:
        print(f"memberbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "guest"


async def _db_upgrade(settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
    finally:
        await db.close()
    print("database is up to date")
    return 0


async def _wechat_menu(settings: Settings) -> int:
    # Imported here, as in _serve: the chat libraries take a second to import and the shell
    # and `db upgrade` do not need them.
    from bot.channels.wechat_api import WeChatAPI, WeChatAPIError
    from bot.channels.wechat_menu import custom_menu
    from bot.core.i18n import Translator

    core = await build_core(settings)
    services = core.services
    api = WeChatAPI(
        settings.wechat_api_base,
        settings.wechat_appid,
        settings.wechat_secret,
        services.cache,
        services.clock,
    )
    try:
        if not api.enabled:
            print(
                "memberbot: set MEMBERBOT_WECHAT_APPID and MEMBERBOT_WECHAT_SECRET first",
                file=sys.stderr,
            )
            return 2
        await api.create_menu(custom_menu(Translator("zh_CN"), core.dispatcher.vocabulary))
    except WeChatAPIError as exc:
        print(f"memberbot: WeChat refused the menu: {exc}", file=sys.stderr)
        return 1
    finally:
        await api.close()
        await core.close()
    print("menu published")
    return 0


async def _shell(settings: Settings, name: str) -> int:
    # Bytes that are not text in the terminal's encoding (a pasted binary, a Latin-1 terminal
    # showing Chinese replies) become replacement characters instead of ending the shell.
    for stream in (sys.stdin, sys.stdout):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    core = await build_core(settings)
    try:
        return await run_shell(core, name, sys.stdin, sys.stdout)
    finally:
        await core.close()


async def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    # Imported here: the web server and the chat libraries take a while to import, and the
    # other commands do not need them.
    from bot.app import create_app
    from bot.http.serving import serve_until_stopped

    core = await build_core(settings)
    host, port = host or settings.http_host, port or settings.http_port
    try:
        await serve_until_stopped(
            create_app(core),
            host,
            port,
            on_started=lambda: log.info(
                "serving host=%s port=%d database=%s", host, port, core.services.db.dialect
            ),
        )
    finally:
        await core.close()
    return 0


# -- memberbot admin: the operator API's actions from the terminal ------------------------

COMMUNITY_OPTIONS = ("tag", "min_tier", "telegram_chat_id", "wechat_qr", "description", "active")


def _locale_name(raw: str) -> tuple[str, str]:
    locale, sep, name = raw.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected LOCALE=NAME such as en=Coffee, not {raw!r}")
    return locale, name


def _url(raw: str) -> str | None:
    return raw or None


def _chat_id(raw: str) -> int | None:
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None


def _add_admin(sub: Any) -> None:
    admin = sub.add_parser("admin", help="operator tasks: communities, roles, invite rewards")
    areas = admin.add_subparsers(dest="area", required=True)

    community = areas.add_parser("community", help="interest communities")
    actions = community.add_subparsers(dest="action", required=True)
    for action, text in (("add", "create a community"), ("set", "change the options given")):
        cmd = actions.add_parser(action, help=text)
        cmd.add_argument("slug", help="2 to 32 characters of a-z, 0-9, - and _")
        cmd.add_argument(
            "--name",
            action="append",
            type=_locale_name,
            default=[],
            metavar="LOCALE=NAME",
            help="name in zh_CN, zh_TW or en; repeat for each language",
        )
        keep = argparse.SUPPRESS  # an option not given is not changed
        cmd.add_argument("--tag", default=keep)
        cmd.add_argument("--min-tier", default=keep, help="lowest tier that may join")
        cmd.add_argument(
            "--telegram-chat-id", type=_chat_id, default=keep, help="group id; '' to clear"
        )
        cmd.add_argument("--wechat-qr", type=_url, default=keep, help="group QR URL; '' to clear")
        cmd.add_argument("--description", default=keep)
        if action == "set":
            cmd.add_argument("--active", action=argparse.BooleanOptionalAction, default=keep)
    actions.add_parser("list", help="every community, archived ones too")
    archive = actions.add_parser("archive", help="hide from members; memberships are kept")
    archive.add_argument("slug")

    role = areas.add_parser("role", help="admin, staff, community moderators")
    actions = role.add_subparsers(dest="action", required=True)
    for action in ("grant", "revoke"):
        cmd = actions.add_parser(action, help=f"{action} a role")
        cmd.add_argument("role", help="admin, staff or moderator")
        cmd.add_argument("channel", help="wechat, telegram or console")
        cmd.add_argument("external_id", help="the member's id in that app")
        cmd.add_argument("--community", help="slug; required for moderator")
    actions.add_parser("list", help="every role granted")

    invites = areas.add_parser("invites", help="invite rewards held for review")
    actions = invites.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="invites in one state, newest first")
    listing.add_argument("--status", default="review", help="review (default), waiting, ...")
    for action in ("approve", "reject"):
        cmd = actions.add_parser(action, help=f"{action} a held reward")
        cmd.add_argument("invite_id", type=int, metavar="ID")


class _Usage(Exception):
    """A command line that parses but asks for nothing (exit 2)."""


async def _admin(settings: Settings, args: argparse.Namespace) -> int:
    core = await build_core(settings)
    try:
        lines = await ADMIN_ACTIONS[args.area, args.action](core.services, args)
    except (_Usage, operators.Invalid) as exc:
        return _refused(exc, 2)
    except operators.OperatorError as exc:
        return _refused(exc, 1)
    finally:
        await core.close()
    print("\n".join(lines))
    return 0


def _refused(exc: Exception, code: int) -> int:
    reason = exc.message if isinstance(exc, operators.OperatorError) else str(exc)
    print(f"memberbot: {' '.join(clean_text(reason).split())}", file=sys.stderr)
    return code


async def _community_save(services: Services, args: argparse.Namespace) -> list[str]:
    data: dict[str, object] = {k: getattr(args, k) for k in COMMUNITY_OPTIONS if k in args}
    adding = args.action == "add"
    if args.name:
        names = (
            {} if adding else dict((await operators.get_community(services, args.slug))["names"])
        )
        data["names"] = names | dict(args.name)
    if not data and not adding:
        raise _Usage("nothing to change: give at least one option")
    saved, _ = await operators.save_community(services, args.slug, data, exists=not adding)
    done = "created" if adding else "updated"
    return [f"{done} community {saved['slug']}", _community_line(saved)]


async def _community_list(services: Services, _args: argparse.Namespace) -> list[str]:
    found = await operators.list_communities(services)
    return [_community_line(c) for c in found] or ["no communities"]


async def _community_archive(services: Services, args: argparse.Namespace) -> list[str]:
    saved = await operators.archive_community(services, args.slug)
    return [f"archived community {saved['slug']}", _community_line(saved)]


def _community_line(c: dict[str, Any]) -> str:
    state = "active" if c["active"] else "archived"
    chat_id = "-" if c["telegram_chat_id"] is None else c["telegram_chat_id"]
    names = ", ".join(f"{locale}={name}" for locale, name in c["names"].items())
    line = (
        f"{c['slug']} {state} min_tier={c['min_tier']} members={c['members']} "
        f"tag={c['tag'] or '-'} telegram_chat_id={chat_id} wechat_qr={c['wechat_qr'] or '-'} "
        f"names: {names}"
    )
    description = " ".join(c["description"].split())
    return f"{line}\n  description: {description}" if description else line


def _role_request(args: argparse.Namespace) -> dict[str, object]:
    return {
        "channel": args.channel,
        "external_id": args.external_id,
        "role": args.role,
        "community": args.community,
    }


async def _role_grant(services: Services, args: argparse.Namespace) -> list[str]:
    held, granted = await operators.grant_role(services, _role_request(args))
    return [f"{'granted' if granted else 'already held'}: {_role_line(held)}"]


async def _role_revoke(services: Services, args: argparse.Namespace) -> list[str]:
    return [f"revoked: {_role_line(await operators.revoke_role(services, _role_request(args)))}"]


async def _role_list(services: Services, _args: argparse.Namespace) -> list[str]:
    return [_role_line(r) for r in await operators.list_roles(services)] or ["no roles granted"]


def _role_line(r: dict[str, Any]) -> str:
    role = f"{r['role']} of {r['community']}" if r["community"] else r["role"]
    accounts = ", ".join(f"{i['channel']}:{i['external_id']}" for i in r["identities"])
    return f"{role}: member {r['member_id']} ({accounts})"


async def _invites_list(services: Services, args: argparse.Namespace) -> list[str]:
    found = await operators.list_invites(services, args.status)
    return [_invite_line(i) for i in found] or [f"no invites with status {args.status}"]


async def _invites_approve(services: Services, args: argparse.Namespace) -> list[str]:
    decided = await operators.decide_invite(services, args.invite_id, approve=True)
    return [f"approved invite {decided['id']}", _invite_line(decided)]


async def _invites_reject(services: Services, args: argparse.Namespace) -> list[str]:
    decided = await operators.decide_invite(services, args.invite_id, approve=False)
    return [f"rejected invite {decided['id']}", _invite_line(decided)]


def _invite_line(i: dict[str, Any]) -> str:
    return (
        f"#{i['id']} {i['status']} inviter={i['inviter_id']} invitee={i['invitee_id']} "
        f"via={i['via']} created_at={i['created_at']} reward_day={i['reward_day'] or '-'} "
        f"decided_at={i['decided_at'] or '-'}"
    )


ADMIN_ACTIONS = {
    ("community", "add"): _community_save,
    ("community", "set"): _community_save,
    ("community", "list"): _community_list,
    ("community", "archive"): _community_archive,
    ("role", "grant"): _role_grant,
    ("role", "revoke"): _role_revoke,
    ("role", "list"): _role_list,
    ("invites", "list"): _invites_list,
    ("invites", "approve"): _invites_approve,
    ("invites", "reject"): _invites_reject,
}


if __name__ == "__main__":
    sys.exit(main())
