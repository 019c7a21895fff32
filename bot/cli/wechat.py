"""`memberbot wechat menu`: publish the Official Account's custom menu."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from bot.cli.runtime import Failed, cause, open_core
from bot.settings import Settings


def add(commands: Any) -> None:
    wechat = commands.add_parser(
        "wechat",
        help="WeChat Official Account tasks",
        description="WeChat Official Account tasks (need MEMBERBOT_WECHAT_APPID and "
        "MEMBERBOT_WECHAT_SECRET; the access token is kept in MEMBERBOT_DATABASE_URL's "
        "cache).",
    )
    tasks = wechat.add_subparsers(dest="wechat_command", required=True, metavar="TASK")
    menu = tasks.add_parser(
        "menu",
        help="publish the custom menu (labels in zh_CN)",
        description="Publish the custom menu, whose buttons send the menu keys (CHECKIN, "
        "POINTS, ...), labelled in zh_CN.",
    )
    menu.set_defaults(run=run_menu)


async def run_menu(settings: Settings, _args: argparse.Namespace) -> int:
    # Imported here, as in serve: the chat libraries take a second to import and the shell
    # and `db upgrade` do not need them.
    import aiohttp

    from bot.channels.wechat_api import WeChatAPI, WeChatAPIError
    from bot.channels.wechat_menu import custom_menu
    from bot.core.i18n import Translator

    logging.getLogger().setLevel(logging.WARNING)
    if not (settings.wechat_appid and settings.wechat_secret):
        raise Failed("set MEMBERBOT_WECHAT_APPID and MEMBERBOT_WECHAT_SECRET first", 2)
    async with open_core(settings) as core:
        services = core.services
        api = WeChatAPI(
            settings.wechat_api_base,
            settings.wechat_appid,
            settings.wechat_secret,
            services.cache,
            services.clock,
        )
        try:
            await api.create_menu(custom_menu(Translator("zh_CN"), core.dispatcher.vocabulary))
        except WeChatAPIError as exc:
            raise Failed(f"WeChat refused the menu: {exc}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            where = f"MEMBERBOT_WECHAT_API_BASE={settings.wechat_api_base}"
            raise Failed(f"cannot reach the WeChat API at {where}: {cause(exc)}") from None
        finally:
            await api.close()
    print("menu published")
    return 0
