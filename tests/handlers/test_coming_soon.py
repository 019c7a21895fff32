"""What is not built says so, keeps what the member wrote, and is offered nowhere (item 11)."""

from __future__ import annotations

import pytest

from bot.app import Core
from bot.channels.wechat_menu import custom_menu
from bot.core.dispatcher import Dispatcher
from bot.core.i18n import Translator
from bot.core.messages import Inbound, Reply
from bot.core.middleware import DEFAULT_MIDDLEWARES
from bot.core.router import Router, Vocabulary
from handlers import FALLBACK, ROUTERS
from handlers.coming_soon import NOT_BUILT, coming_soon
from tests.conftest import HELP_TEXT, PRIVACY_LINE

WORDS = Vocabulary(ROUTERS)
SOON = "This feature is coming soon."
SPEC_COMMANDS = [
    "start",
    "help",
    "checkin",
    "points",
    "tier",
    "invite",
    "communities",
    "join",
    "leave",
    "claim",
    "flashsale",
    "rewards",
    "redeem",
    "vouchers",
    "makeup",
    "badges",
    "top",
    "complain",
    "tickets",
    "ticket",
    "rate",
    "mydata",
    "forgetme",
    "privacy",
    "tasks",
    "draw",
    "mute",
    "unmute",
    "link",
    "lang",
    "birthday",
    "take",
    "reply",
    "wait",
    "resolve",
    "assign",
    "open",
]


@pytest.mark.parametrize("command", SPEC_COMMANDS)
def test_every_spec_command_is_known(command: str) -> None:
    assert WORDS.commands.get(command) is not None


def test_menus_help_and_command_list_offer_only_what_is_built() -> None:
    offered = {a.name for what in ("label", "help", "summary") for a in WORDS.listed(what)}
    menu = custom_menu(Translator("zh_CN"), WORDS)
    keys = {
        b["key"] for top in menu["button"] for b in [top, *top.get("sub_button", [])] if "key" in b
    }
    placeholders = {name for name, action in WORDS.actions.items() if action.placeholder}

    assert offered.isdisjoint(NOT_BUILT) and offered.isdisjoint(placeholders)
    assert keys == {
        "CHECKIN",
        "POINTS",
        "TIER",
        "INVITE",
        "COMMUNITIES",
        "REWARDS",
        "COMPLAIN",
        "HELP",
    }


def _with_a_placeholder(core: Core) -> None:
    """A command named by the SPEC before it is built, as handlers/coming_soon.py declares one."""
    planned = Router("planned")
    planned.action(
        "wishlist", commands=("wishlist",), keywords={"zh_CN": ("心愿单",)}, placeholder=True
    )(coming_soon)
    core.dispatcher = Dispatcher(core.services, [*ROUTERS, planned], DEFAULT_MIDDLEWARES, FALLBACK)


async def test_a_command_not_built_says_coming_soon_and_keeps_what_was_written(core, chat):
    _with_a_placeholder(core)
    alice = chat("alice")

    wish = await alice.say("/wishlist a blue kettle")
    bare = await alice.say("心愿单")

    assert wish is not None
    assert wish.text == (
        f"{SOON}\nI noted what you wrote: “/wishlist a blue kettle”\n\n{HELP_TEXT}{PRIVACY_LINE}"
    )
    assert bare is not None and bare.text == f"{SOON}\n\n{HELP_TEXT}"


def test_the_rewards_words_of_an_old_menu_reach_the_mall() -> None:
    for said in ("积分兑换", "積分兌換", "points mall", "rewards"):
        found = WORDS.resolve(Inbound(channel="console", external_id="a", text=said))
        assert found.action == "rewards", said


def test_a_built_action_wins_over_its_placeholder_in_any_order() -> None:
    planned = Router("planned")
    planned.action(
        "wishlist", commands=("wishlist",), keywords={"zh_CN": ("心愿单",)}, placeholder=True
    )(coming_soon)
    built = Router("built")

    @built.action("wishlist", commands=("wishlist",), keywords={"zh_CN": ("心愿单",)}, help="W")
    async def wishlist(msg: Inbound, ctx: object) -> Reply:
        return Reply("wishlist")

    for routers in ([built, *ROUTERS, planned], [planned, *ROUTERS, built]):
        words = Vocabulary(routers)
        said = words.resolve(Inbound(channel="console", external_id="a", text="心愿单"))

        assert words.actions["wishlist"].handler is wishlist
        assert said.action == "wishlist"
