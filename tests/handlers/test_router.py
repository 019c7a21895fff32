"""Which action a message asks for: SPEC commands, keywords in three languages, menu keys."""

from __future__ import annotations

import pytest

from bot.core.messages import Inbound
from bot.core.router import LINK_CODE, UNKNOWN, Route, Vocabulary
from handlers import ROUTERS
from tests.conftest import HELP_TEXT, PRIVACY_LINE
from tests.handlers.conftest import UNKNOWN_REPLY

WORDS = Vocabulary(ROUTERS)
resolve = WORDS.resolve


def text(said: str) -> Route:
    return resolve(Inbound(channel="console", external_id="alice", text=said))


TELEGRAM_COMMANDS = {
    "/start": "help",
    "/help": "help",
    "/checkin": "checkin",
    "/points": "points",
    "/tier": "tier",
    "/invite": "invite",
    "/communities": "communities",
    "/join": "join",
    "/leave": "leave",
    "/claim": "claim",
    "/rewards": "rewards",
    "/redeem": "redeem",
    "/complain": "complain",
    "/tickets": "tickets",
    "/ticket": "ticket",
    "/link": "link",
    "/lang": "lang",
    "/birthday": "birthday",
}

KEYWORDS = {
    "帮助": "help",
    "菜单": "help",
    "help": "help",
    "签到": "checkin",
    "簽到": "checkin",
    "checkin": "checkin",
    "积分": "points",
    "積分": "points",
    "points": "points",
    "等级": "tier",
    "等級": "tier",
    "会员": "tier",
    "tier": "tier",
    "邀请": "invite",
    "邀請": "invite",
    "invite": "invite",
    "社群": "communities",
    "加入": "join",
    "退出": "leave",
    "抢": "claim",
    "搶": "claim",
    "claim": "claim",
    "兑换": "redeem",
    "兌換": "redeem",
    "redeem": "redeem",
    "投诉": "complain",
    "投訴": "complain",
    "complain": "complain",
    "我的投诉": "tickets",
    "tickets": "tickets",
    "绑定": "link",
    "link": "link",
    "语言": "lang",
    "生日": "birthday",
    # zh_TW and English counterparts the SPEC implies
    "幫助": "help",
    "選單": "help",
    "menu": "help",
    "會員": "tier",
    "join": "join",
    "leave": "leave",
    "rewards": "rewards",
    "我的投訴": "tickets",
    "綁定": "link",
    "語言": "lang",
    "lang": "lang",
    "language": "lang",
    "birthday": "birthday",
}

MENU_KEYS = {
    "HELP": "help",
    "CHECKIN": "checkin",
    "POINTS": "points",
    "TIER": "tier",
    "INVITE": "invite",
    "COMMUNITIES": "communities",
    "REWARDS": "rewards",
    "COMPLAIN": "complain",
}


@pytest.mark.parametrize(("said", "action"), TELEGRAM_COMMANDS.items())
def test_every_spec_telegram_command_typed_as_text_resolves(said, action):
    assert text(said) == Route(action, "")


@pytest.mark.parametrize(("command", "action"), TELEGRAM_COMMANDS.items())
def test_every_spec_telegram_command_parsed_by_the_channel_resolves(command, action):
    msg = Inbound(channel="telegram", external_id="1", command=command[1:], args=" x ")
    assert resolve(msg) == Route(action, "x")


@pytest.mark.parametrize(("said", "action"), KEYWORDS.items())
def test_every_spec_keyword_resolves(said, action):
    assert text(said) == Route(action, "")


@pytest.mark.parametrize(("key", "action"), MENU_KEYS.items())
def test_every_spec_wechat_menu_key_resolves(key, action):
    msg = Inbound(channel="wechat", external_id="openid", menu_key=key)
    assert resolve(msg) == Route(action, "")


def test_menu_key_carries_its_argument_after_a_colon():
    msg = Inbound(channel="console", external_id="alice", menu_key="LANG:zh_TW")
    assert resolve(msg) == Route("lang", "zh_TW")


def test_every_resolvable_action_has_a_handler():
    actions = set(WORDS.actions)
    wanted = set(TELEGRAM_COMMANDS.values()) | set(KEYWORDS.values()) | set(MENU_KEYS.values())
    assert wanted <= actions


@pytest.mark.parametrize("said", ["/checkin@MyBot", "/CHECKIN", "/checkin@MyBot   "])
def test_command_addressed_to_the_bot_by_name_resolves(said):
    assert text(said) == Route("checkin", "")


def test_command_with_bot_name_keeps_its_arguments():
    assert text("/link@MyBot 123456") == Route("link", "123456")


@pytest.mark.parametrize(
    ("said", "route"),
    [
        ("绑定123456", Route("link", "123456")),
        ("绑定 123456", Route("link", "123456")),
        ("抢A1B2", Route("claim", "A1B2")),
        ("搶 A1B2", Route("claim", "A1B2")),
        ("加入 running", Route("join", "running")),
        ("退出running", Route("leave", "running")),
        ("投诉 快递太慢了", Route("complain", "快递太慢了")),
        ("生日05-20", Route("birthday", "05-20")),
        ("语言 en", Route("lang", "en")),
        ("claim   A1B2  ", Route("claim", "A1B2")),
        ("complain the parcel is late", Route("complain", "the parcel is late")),
        ("Points", Route("points", "")),
        ("  签到  ", Route("checkin", "")),
    ],
)
def test_keyword_arguments_may_be_glued_on_or_spaced(said, route):
    assert text(said) == route


def test_longer_keyword_wins_over_its_prefix():
    assert text("我的投诉") == Route("tickets", "")


@pytest.mark.parametrize("said", ["pointsy", "checking", "helpful", "tiers", "link123456"])
def test_english_keyword_needs_a_word_boundary(said):
    assert text(said).action == UNKNOWN


def test_bare_six_digit_number_goes_to_the_link_module_to_decide():
    assert text("123456") == Route(LINK_CODE, "123456")


@pytest.mark.parametrize("said", ["12345", "1234567", "hello there", "/nosuchcommand", ""])
def test_anything_else_is_unknown(said):
    assert text(said).action == UNKNOWN


async def test_unknown_text_gets_a_short_help_not_silence(chat):
    reply = await chat("alice").say("what is the weather")

    assert reply is not None
    assert reply.text == UNKNOWN_REPLY + PRIVACY_LINE
    assert [b.action for b in reply.buttons] == [
        "CHECKIN",
        "POINTS",
        "TIER",
        "INVITE",
        "COMMUNITIES",
        "REWARDS",
        "COMPLAIN",
        "LINK",
    ]


async def test_unknown_command_gets_the_short_help(chat):
    reply = await chat("alice").say("/frobnicate")

    assert reply is not None
    assert reply.text == UNKNOWN_REPLY + PRIVACY_LINE


async def test_help_welcomes_a_new_member_once(chat):
    alice = chat("alice")

    first = await alice.say("/start")
    second = await alice.say("/start")

    assert first is not None and second is not None
    assert first.text == "Welcome! You are now a member.\n" + HELP_TEXT + PRIVACY_LINE
    assert second.text == HELP_TEXT


async def test_command_with_bot_name_reaches_the_handler(chat):
    reply = await chat("alice").say("/checkin@MyBot")

    assert reply is not None
    assert reply.text.startswith("Checked in! +5 points")


async def test_a_menu_button_answered_by_number_runs_its_action(chat):
    alice = chat("alice")
    await alice.say("help")

    reply = await alice.say("1")  # [1] Check in

    assert reply is not None
    assert reply.text.startswith("Checked in! +5 points")
