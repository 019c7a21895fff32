"""What members type instead of commands: option labels, everyday phrasings, greetings,
community names, bare numbers (issue 16, items 7, 9 and 12)."""

from __future__ import annotations

import pytest

from bot.core.messages import Inbound
from bot.core.router import Vocabulary
from handlers import ROUTERS
from tests.conftest import HELP_TEXT, PRIVACY_LINE, privacy_line
from tests.handlers.conftest import UNKNOWN_REPLY, Probe
from tests.handlers.test_communities import listed  # noqa: F401 (a fixture)
from tests.handlers.test_invites import GIFT, code_of
from tests.handlers.test_link import link_code

WORDS = Vocabulary(ROUTERS)
COMING_SOON = "This feature is coming soon."


@pytest.mark.parametrize(
    ("said", "action", "args"),
    [
        ("邀请好友", "invite", ""),
        ("邀請好友", "invite", ""),
        ("积分兑换", "rewards", ""),
        ("绑定账号", "link", ""),
        ("綁定帳號", "link", ""),
        ("Check in", "checkin", ""),
        ("Check-in", "checkin", ""),
        ("check in", "checkin", ""),
        ("check-in!", "checkin", ""),
        ("我要签到", "checkin", ""),
        ("我的积分", "points", ""),
        ("查积分", "points", ""),
        ("我的積分", "points", ""),
        ("points?", "points", ""),
        ("积分？", "points", ""),
        ("Link accounts", "link", ""),
        ("Invite", "invite", ""),
        ("会员等级", "tier", ""),
        ("hello", "help", ""),
        ("Hello!", "help", ""),
        ("你好", "help", ""),
        ("您好", "help", ""),
        ("Join Coffee lovers", "join", "Coffee lovers"),
        ("加入 咖啡爱好者", "join", "咖啡爱好者"),
        ("邀请码 ABC234", "invite", "ABC234"),
    ],
)
def test_labels_and_phrasings_resolve(said: str, action: str, args: str) -> None:
    route = WORDS.resolve(Inbound(channel="console", external_id="alice", text=said))

    assert (route.action, route.args) == (action, args)


async def test_a_typed_label_answers_like_the_command(chat):
    by_label = await chat("alice", locale_hint="zh-CN").say("邀请好友")
    by_command = await chat("alice", locale_hint="zh-CN").say("/invite")

    assert by_label is not None and by_command is not None
    assert by_label.text == by_command.text + privacy_line("zh_CN")  # the first answer
    assert by_label.text.startswith("您的邀请码：")


async def test_everyday_phrasings_check_in_and_show_points(chat):
    alice = chat("alice")

    checked = await alice.say("Check-in")
    again = await alice.say("check in")
    points = await alice.say("points?")

    assert checked is not None and checked.text.startswith("Checked in! +5 points")
    assert again is not None and again.text.startswith("You have already checked in today")
    assert points is not None and points.text.startswith("Your points: 5\n")


async def test_the_rewards_label_opens_the_mall(chat):
    reply = await chat("li", locale_hint="zh-CN").say("积分兑换")

    assert reply is not None and reply.text == "积分商城暂时没有商品。" + privacy_line("zh_CN")


async def test_a_greeting_gets_the_welcome(chat):
    first = await chat("newbie").say("hello")
    zh = await chat("xiaoming", locale_hint="zh-CN").say("你好")

    assert first is not None
    assert first.text == "Welcome! You are now a member.\n" + HELP_TEXT + PRIVACY_LINE
    assert zh is not None and zh.text.startswith("欢迎！")


async def test_join_and_leave_by_the_displayed_name(chat, listed):  # noqa: F811
    alice, li = chat("alice"), chat("li", locale_hint="zh-CN")

    joined = await alice.say("Join Coffee lovers")
    joined_zh = await li.say("加入 咖啡爱好者")
    left = await alice.say("leave coffee LOVERS")

    assert joined is not None and joined.text.startswith("You joined Coffee lovers!")
    assert joined_zh is not None and joined_zh.text.startswith("您已加入咖啡爱好者！")
    assert left is not None
    assert left.text == "You left Coffee lovers. Send “join coffee” to come back any time."


async def test_zh_tw_falls_back_to_the_zh_cn_name(chat, listed):  # noqa: F811
    reply = await chat("mei", locale_hint="zh-TW").say("社群")

    assert reply is not None
    assert reply.text.split("\n")[1].startswith("• 咖啡爱好者 (coffee)")


async def test_a_word_after_the_invite_keyword_uses_up_no_try(chat, probe: Probe):
    alice, bob = chat("alice"), chat("bob")
    code = await code_of(alice)

    typed = ["invite 😀😀😀", "invite friends!", *["邀请码 好友"] * 5]
    slips = [await bob.say(said) for said in typed]
    right = await bob.say(f"invite {code}")

    assert [s.text for s in slips if s is not None][:1] == [
        "An invite code is 4 to 12 letters and digits, like "
        f"{(await probe.member(bob)).invite_code}. Please check it and try again." + PRIVACY_LINE
    ]
    assert right is not None and right.text == GIFT.format(balance=20)


async def test_a_bare_number_is_a_link_code_only_while_one_waits(chat, probe: Probe):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")

    nothing_waits = [await alice_tg.say("123456") for _ in range(6)]
    code = await link_code(alice)
    linked = await alice_tg.say(code)

    assert [r.text if r else None for r in nothing_waits] == [
        UNKNOWN_REPLY + PRIVACY_LINE,
        *[UNKNOWN_REPLY] * 5,
    ]
    assert linked is not None and linked.text.startswith("Linked!")
    assert await probe.identities(alice) == {("console", "alice"), ("telegram", "a-tg")}
