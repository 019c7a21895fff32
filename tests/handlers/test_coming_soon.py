"""What is not built says so, keeps what the member wrote, and is offered nowhere (item 11)."""

from __future__ import annotations

import pytest

from bot.channels.wechat_menu import custom_menu
from bot.core.i18n import Translator
from bot.core.messages import Inbound, Reply
from bot.core.router import Router, Vocabulary
from handlers import ROUTERS
from handlers.coming_soon import NOT_BUILT
from tests.conftest import HELP_TEXT

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

    assert offered.isdisjoint(NOT_BUILT)
    assert keys == {"CHECKIN", "POINTS", "TIER", "INVITE", "COMMUNITIES", "HELP"}


async def test_a_command_not_built_says_coming_soon_and_keeps_what_was_written(chat):
    alice = chat("alice")

    complaint = await alice.say("/complain my parcel arrived broken")
    tasks = await alice.say("任务")

    assert complaint is not None
    assert complaint.text == (
        f"{SOON}\nI noted what you wrote: “/complain my parcel arrived broken”\n\n{HELP_TEXT}"
    )
    assert tasks is not None and tasks.text == f"{SOON}\n\n{HELP_TEXT}"


async def test_rewards_menu_key_of_an_old_menu_still_answers(chat):
    reply = await chat("alice").say("积分兑换")

    assert reply is not None and reply.text == f"{SOON}\n\n{HELP_TEXT}"


def test_a_built_action_wins_over_its_placeholder_in_any_order() -> None:
    built = Router("built")

    @built.action("tasks", commands=("tasks",), keywords={"zh_CN": ("任务",)}, help="Tasks")
    async def tasks(msg: Inbound, ctx: object) -> Reply:
        return Reply("tasks")

    for routers in ([built, *ROUTERS], [*ROUTERS, built]):
        words = Vocabulary(routers)
        said = words.resolve(Inbound(channel="console", external_id="a", text="任务"))

        assert words.actions["tasks"].handler is tasks
        assert said.action == "tasks"
