"""The `memberbot` command: serve | shell | db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import io
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from bot.app_core import build_core
from bot.channels.console import run_shell
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
    from bot.channels.wechat import wechat_api_for
    from bot.channels.wechat_api import WeChatAPIError
    from bot.channels.wechat_menu import custom_menu
    from bot.core.i18n import Translator

    core = await build_core(settings)
    api = wechat_api_for(core)
    try:
        if not api.enabled:
            print(
                "memberbot: set MEMBERBOT_WECHAT_APPID and MEMBERBOT_WECHAT_SECRET first",
                file=sys.stderr,
            )
            return 2
        await api.create_menu(custom_menu(Translator("zh_CN")))
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
    from bot.app import create_app

    core = await build_core(settings)
    runner = web.AppRunner(create_app(core), access_log=None)
    await runner.setup()
    host, port = host or settings.http_host, port or settings.http_port
    await web.TCPSite(runner, host, port).start()
    log.info("serving host=%s port=%d database=%s", host, port, core.services.db.dialect)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await core.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
