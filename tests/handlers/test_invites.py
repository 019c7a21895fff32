"""Invites through the console door: codes, attribution rules, both rewards, the daily cap,
review, and linking accounts that turn an invite into a self-invite."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import select

from bot.app import Core
from bot.channels.console import ConsoleChat
from bot.core.messages import Inbound, Reply
from bot.core.ports import Delivery
from handlers import invites as invite_handlers
from storage import invites
from storage.models import Invite
from tests.conftest import PRIVACY_LINE
from tests.handlers.conftest import Entry, Probe
from tests.handlers.test_link import link_code

CODE_LINE = re.compile(r"^Your invite code: ([2-9A-Z]{6})$", re.M)
GIFT = "Welcome gift: +20 points for joining through a friend's invitation. Balance: {balance}."
FRIEND_CHECKED_IN = (
    "A friend you invited checked in for the first time: +50 points and +50 growth for you. "
    "Balance: {balance}."
)
HELD = (
    "A friend you invited checked in for the first time. You have had many invite rewards "
    "today, so this one waits for a quick review."
)
ALREADY = "You have already been invited; an invitation counts once."
OWN = "That is your own invite code: share it with friends instead."
TOO_LATE = "Invite codes count only within 7 days of joining, and you joined earlier."
TOO_MANY = "Too many wrong codes. Please try again in an hour."


def cap_daily_rewards(core: Core, cap: int) -> None:
    """Past `cap` rewards a day an inviter's further rewards wait for review."""
    rules = core.services.rules
    invite_rules = rules.invites.model_copy(update={"daily_review_threshold": cap})
    core.services.rules = rules.model_copy(update={"invites": invite_rules})


async def code_of(who: ConsoleChat) -> str:
    reply = await who.say("/invite")
    assert reply is not None
    found = CODE_LINE.search(reply.text)
    assert found is not None, reply.text
    return found.group(1)


async def invite_rows(core: Core) -> list[Invite]:
    async with core.services.db.reader() as session:
        return list((await session.execute(select(Invite).order_by(Invite.id))).scalars())


async def test_invite_shows_the_code_the_rewards_and_the_counts(chat):
    reply = await chat("alice").say("/invite")

    assert reply is not None
    code = CODE_LINE.search(reply.text)
    assert code is not None
    assert reply.text == (
        f"Your invite code: {code.group(1)}\n"
        f"New friends can also send “invite {code.group(1)}” within 7 days of joining.\n"
        "They get 20 points at once; you get 50 points and 50 growth when they first check in.\n"
        "Invited: 0 · Rewarded: 0 · Waiting for review: 0" + PRIVACY_LINE
    )
    assert reply.buttons == ()  # the terminal has no link to share
    assert reply.private is True


@pytest.mark.parametrize(
    "typed", ["invite {code}", "邀请码 {lower}", "邀請碼{code}", "/invite {spaced}"]
)
async def test_a_typed_code_attributes_the_newcomer_with_a_welcome_gift(
    chat, probe: Probe, typed: str
):
    alice, bob = chat("alice"), chat("bob")
    code = await code_of(alice)
    spaced = f"{code[:3]} {code[3:]}"

    reply = await bob.say(typed.format(code=code, lower=code.lower(), spaced=spaced))

    assert reply is not None
    assert reply.text == GIFT.format(balance=20) + PRIVACY_LINE
    assert await probe.balance(bob) == 20
    assert await probe.entries(bob) == [Entry("earn", 20, "invite-welcome")]
    assert await probe.balance(alice) == 0  # the inviter waits for Bob's first check-in


async def test_the_inviter_is_rewarded_and_told_when_the_invitee_first_checks_in(
    chat, probe: Probe, core: Core, clock
):
    alice, bob = chat("alice"), chat("bob")
    await bob.say(f"invite {await code_of(alice)}")

    await bob.say("checkin")

    assert [p.text for p in alice.pushed()] == [FRIEND_CHECKED_IN.format(balance=50)]
    assert await probe.balance(alice) == 50
    assert (await probe.member(alice)).growth == 50
    assert await probe.entries(alice) == [Entry("earn", 50, "invite-reward")]
    clock.advance(days=1)
    await bob.say("checkin")  # later check-ins reward nobody
    assert alice.pushed() == []
    assert await probe.balance(alice) == 50
    reply = await alice.say("/invite")
    assert reply is not None
    assert reply.text.endswith("Invited: 1 · Rewarded: 1 · Waiting for review: 0")
    [row] = await invite_rows(core)
    assert (row.status, row.via) == ("rewarded", "code")


async def test_the_reward_can_lift_the_inviter_a_tier_and_says_so(chat, probe: Probe):
    alice, bob = chat("alice"), chat("bob")
    await probe.set_growth(alice, 460, "bronze")
    await bob.say(f"invite {await code_of(alice)}")

    await bob.say("checkin")

    [told] = alice.pushed()
    assert told.text.startswith(FRIEND_CHECKED_IN.format(balance=50) + "\n")
    assert "Congratulations, you are now Silver!" in told.text
    assert (await probe.member(alice)).tier == "silver"


async def test_a_deep_link_or_qr_payload_attributes_a_new_member(chat, core: Core, probe: Probe):
    code = await code_of(chat("alice"))
    inbound = Inbound(
        channel="telegram",
        external_id="42",
        chat_id="42",
        text="/start",
        referral=f"ref_{code}",
        locale_hint="en",
    )

    reply = await core.dispatcher.handle(inbound)

    assert reply is not None
    lines = reply.text.split("\n")
    assert lines[:2] == ["Welcome! You are now a member.", GIFT.format(balance=20)]
    assert lines[2] == "Hi! Here is what I can do:"
    assert reply.private is True  # a gift and a balance: never shown in a group
    [row] = await invite_rows(core)
    assert row.via == "telegram"


async def test_payloads_that_are_not_invites_change_nothing(core: Core):
    inbound = Inbound(channel="telegram", external_id="42", text="/start", referral="promo_x")

    reply = await core.dispatcher.handle(inbound)

    assert reply is not None
    assert reply.text.startswith("Welcome! You are now a member.\nHi! Here is what I can do:")
    assert reply.private is False
    assert await invite_rows(core) == []


async def test_refusals_say_why(chat, clock, probe: Probe):
    alice, bob, carol = chat("alice"), chat("bob"), chat("carol")
    code = await code_of(alice)
    await bob.say(f"invite {code}")

    assert (await alice.say(f"invite {code}")).text == OWN  # type: ignore[union-attr]
    assert (await bob.say(f"invite {code}")).text == ALREADY  # type: ignore[union-attr]
    bob_code = await code_of(bob)
    assert (await bob.say(f"invite {bob_code}")).text == OWN  # type: ignore[union-attr]
    assert (await carol.say("invite 2345")).text == (  # type: ignore[union-attr]
        "There is no invite code 2345. Please check it and try again." + PRIVACY_LINE
    )
    assert (await carol.say("invite <b>!")).text == (  # type: ignore[union-attr]
        "There is no invite code B. Please check it and try again."
    )
    clock.advance(minutes=1)
    dave = chat("dave")
    dave_code = await code_of(dave)  # Dave is newer than Carol
    assert (await carol.say(f"invite {dave_code}")).text == (  # type: ignore[union-attr]
        "That code's owner joined after you, so it cannot count for you."
    )
    assert await probe.balance(carol) == 0


async def test_a_code_counts_only_within_seven_days_of_first_contact(chat, clock, probe: Probe):
    alice, bob, carol = chat("alice"), chat("bob"), chat("carol")
    code = await code_of(alice)
    await bob.say("hi")
    await carol.say("hi")

    clock.advance(days=7)
    on_the_day = await bob.say(f"invite {code}")
    clock.advance(seconds=1)
    too_late = await carol.say(f"invite {code}")

    assert on_the_day is not None and on_the_day.text == GIFT.format(balance=20)
    assert too_late is not None and too_late.text == TOO_LATE
    assert await probe.balance(carol) == 0


async def test_wrong_codes_are_limited_then_even_a_right_one_waits(chat, core: Core, probe: Probe):
    alice, mallory = chat("alice"), chat("mallory")
    code = await code_of(alice)
    for guess in ("AAAAAA", "BBBBBB", "CCCCCC", "DDDDDD", "EEEEEE"):
        reply = await mallory.say(f"invite {guess}")
        assert reply is not None and reply.text.startswith("There is no invite code")

    blocked = await mallory.say(f"invite {code}")

    assert blocked is not None and blocked.text == TOO_MANY
    assert await probe.balance(mallory) == 0
    assert await invite_rows(core) == []


async def test_past_the_daily_cap_rewards_wait_for_review_then_pay_once(
    chat, core: Core, probe: Probe, no_flood_limit
):
    cap_daily_rewards(core, 2)
    alice = chat("alice")
    code = await code_of(alice)
    friends = [chat(f"friend{i}") for i in range(3)]
    for friend in friends:
        await friend.say(f"invite {code}")
    for friend in friends:
        await friend.say("checkin")

    assert [p.text for p in alice.pushed()] == [
        FRIEND_CHECKED_IN.format(balance=50),
        FRIEND_CHECKED_IN.format(balance=100),
        HELD,
    ]
    assert await probe.balance(alice) == 100
    held = [row for row in await invite_rows(core) if row.status == "review"]
    assert len(held) == 1

    first = await invite_handlers.review(core.services, held[0].id, approve=True)
    second = await invite_handlers.review(core.services, held[0].id, approve=True)
    await core.services.pushes.settle()

    assert first is not None and first.status == "rewarded" and first.balance == 150
    assert second is None
    assert await probe.balance(alice) == 150
    assert (await probe.member(alice)).growth == 150
    assert [p.text for p in alice.pushed()] == [FRIEND_CHECKED_IN.format(balance=150)]


async def test_a_rejected_reward_pays_nothing_and_says_so(chat, core: Core, probe: Probe):
    cap_daily_rewards(core, 0)
    alice, bob = chat("alice"), chat("bob")
    await bob.say(f"invite {await code_of(alice)}")
    await bob.say("checkin")
    assert [p.text for p in alice.pushed()] == [HELD]
    [row] = await invite_rows(core)

    rejected = await invite_handlers.review(core.services, row.id, approve=False)
    approved_after = await invite_handlers.review(core.services, row.id, approve=True)
    await core.services.pushes.settle()

    assert rejected is not None and rejected.status == "rejected"
    assert approved_after is None
    assert await probe.balance(alice) == 0
    assert [p.text for p in alice.pushed()] == [
        "An invite reward of yours was not approved after review."
    ]


async def test_the_first_checkin_arriving_twenty_times_at_once_rewards_once(
    chat, probe: Probe, no_flood_limit
):
    alice, bob = chat("alice"), chat("bob")
    await bob.say(f"invite {await code_of(alice)}")

    await asyncio.gather(*(bob.say("checkin") for _ in range(20)))

    assert await probe.balance(alice) == 50
    assert await probe.entries(alice) == [Entry("earn", 50, "invite-reward")]
    assert len(alice.pushed()) == 1
    assert await probe.balance(bob) == 25


async def test_one_person_in_two_apps_is_attributed_once_when_both_send_at_once(
    chat, core: Core, probe: Probe, no_flood_limit
):
    alice = chat("alice")
    code = await code_of(alice)
    bob, bob_tg = chat("bob"), chat("bob-tg", channel="telegram")
    await bob_tg.say(await link_code(bob))  # one member, two apps

    rules = core.services.rules  # every typed code counts towards the limit: lift it here
    limits = rules.invites.model_copy(update={"wrong_code_limit": 100})
    core.services.rules = rules.model_copy(update={"invites": limits})

    replies = await asyncio.gather(*(who.say(f"invite {code}") for who in [bob, bob_tg] * 5))

    texts = sorted(r.text for r in replies if r is not None)
    assert texts == sorted([GIFT.format(balance=20)] + [ALREADY] * 9)
    assert await probe.balance(bob) == 20
    assert len(await invite_rows(core)) == 1


async def test_linking_inviter_and_invitee_voids_the_self_invite(chat, core: Core, probe: Probe):
    alice, alice_tg = chat("alice"), chat("alice-tg", channel="telegram")
    await alice_tg.say(f"invite {await code_of(alice)}")  # looks like a friend, is not
    await alice_tg.say("checkin")
    assert await probe.balance(alice) == 50

    linked = await alice_tg.say(await link_code(alice))

    assert linked is not None
    assert linked.text == "Linked! Your accounts are now one member: 5 points, tier Bronze."
    assert await probe.balance(alice) == 5  # only the check-in stays
    assert (await probe.member(alice)).growth == 1
    [row] = await invite_rows(core)
    assert row.status == "void"
    reply = await alice.say("/invite")
    assert reply is not None
    assert reply.text.endswith("Invited: 0 · Rewarded: 0 · Waiting for review: 0")


async def test_after_linking_ones_own_code_from_the_other_app_is_refused(chat, probe: Probe):
    alice, alice_tg = chat("alice"), chat("alice-tg", channel="telegram")
    await alice_tg.say(await link_code(alice))

    reply = await alice_tg.say(f"invite {await code_of(alice)}")

    assert reply is not None and reply.text == OWN
    assert await probe.balance(alice) == 0


async def test_linking_two_invitees_keeps_one_invitation(chat, core: Core, probe: Probe):
    alice, carol = chat("alice"), chat("carol")
    bob, bob_tg = chat("bob"), chat("bob-tg", channel="telegram")
    await bob.say(f"invite {await code_of(alice)}")
    await bob_tg.say(f"invite {await code_of(carol)}")
    assert await probe.balance(bob) + await probe.balance(bob_tg) == 40

    await bob_tg.say(await link_code(bob))

    assert await probe.balance(bob) == 20
    statuses = sorted((row.inviter_id, row.status) for row in await invite_rows(core))
    alice_id, carol_id = (await probe.member(alice)).id, (await probe.member(carol)).id
    assert statuses == sorted([(alice_id, "waiting"), (carol_id, "void")])
    await bob.say("checkin")
    assert await probe.balance(alice) == 50
    assert await probe.balance(carol) == 0


async def test_a_merged_inviters_code_still_credits_the_merged_member(chat, probe: Probe):
    alice, alice_tg = chat("alice"), chat("alice-tg", channel="telegram")
    tg_code = await code_of(alice_tg)
    await alice_tg.say(await link_code(alice))  # alice-tg's member folds into alice's
    bob = chat("bob")

    reply = await bob.say(f"invite {tg_code}")
    await bob.say("checkin")

    assert reply is not None and reply.text == GIFT.format(balance=20) + PRIVACY_LINE
    assert await probe.balance(alice) == 50


async def test_counts_and_rows_stay_consistent_in_storage(chat, core: Core):
    alice = chat("alice")
    code = await code_of(alice)
    for name in ("b", "c"):
        await chat(name).say(f"invite {code}")

    async with core.services.db.reader() as session:
        counts = await invites.counts(session, (await invite_rows(core))[0].inviter_id)

    assert (counts.invited, counts.rewarded, counts.review) == (2, 0, 0)


async def test_many_first_checkins_at_once_never_pass_the_daily_cap(
    chat, core: Core, probe: Probe, no_flood_limit
):
    cap_daily_rewards(core, 5)
    alice = chat("alice")
    code = await code_of(alice)
    friends = [chat(f"friend{i}") for i in range(12)]
    for friend in friends:
        await friend.say(f"invite {code}")

    await asyncio.gather(*(friend.say("checkin") for friend in friends))

    statuses = sorted(row.status for row in await invite_rows(core))
    assert statuses == ["review"] * 7 + ["rewarded"] * 5
    assert await probe.balance(alice) == 250
    assert (await probe.member(alice)).growth == 250


async def test_the_invitees_checkin_is_answered_without_waiting_for_the_inviters_app(
    chat, core: Core
):
    class GatedPusher:
        """An app that takes its time to deliver (WeChat retrying, Telegram rate limits)."""

        channel = "gated"

        def __init__(self) -> None:
            self.gate = asyncio.Event()
            self.sent: list[str] = []

        async def send(self, chat_id: str, reply: Reply) -> Delivery:
            await self.gate.wait()
            self.sent.append(reply.text)
            return Delivery.ok()

    port = GatedPusher()
    core.services.senders.add(port)
    alice, bob = chat("alice", channel="gated"), chat("bob")
    await bob.say(f"invite {await code_of(alice)}")

    reply = await asyncio.wait_for(
        core.dispatcher.handle(Inbound(channel="console", external_id="bob", text="checkin")), 5
    )

    assert reply is not None and reply.text.startswith("Checked in! +5 points")
    assert port.sent == []
    port.gate.set()
    await core.services.pushes.settle()
    assert port.sent == [FRIEND_CHECKED_IN.format(balance=50)]


async def test_linking_takes_a_voided_invites_reward_back_from_its_inviter_not_the_member(
    chat, core: Core, probe: Probe
):
    alice, carol = chat("alice"), chat("carol")
    bob, bob_tg = chat("bob"), chat("bob-tg", channel="telegram")
    await bob.say(f"invite {await code_of(alice)}")
    await bob_tg.say(f"invite {await code_of(carol)}")
    await bob_tg.say("checkin")  # Carol is paid for a "new" member who is Bob
    assert (await probe.balance(carol), (await probe.member(carol)).growth) == (50, 50)

    await bob_tg.say(await link_code(bob))

    assert await probe.balance(bob) == 25  # Alice's welcome gift and the check-in
    assert (await probe.member(bob)).growth == 1
    assert (await probe.balance(carol), (await probe.member(carol)).growth) == (0, 0)
    assert await probe.entries(carol) == [
        Entry("earn", 50, "invite-reward"),
        Entry("reverse", -50, "invite-void"),
    ]


async def test_a_self_invite_moved_by_one_link_is_still_voided_by_the_next(
    chat, core: Core, probe: Probe
):
    main, second = chat("main"), chat("second")
    newest = chat("newest", channel="telegram")
    await newest.say(f"invite {await code_of(second)}")
    await newest.say("checkin")  # "second" is paid 50

    await newest.say(await link_code(main))  # main + newest: the invite moves to main
    await second.say(await link_code(chat("main-tg", channel="telegram")))  # unrelated
    wechat_second = chat("second-wx", channel="wechat")
    await wechat_second.say(await link_code(second))  # second gets a WeChat account
    await wechat_second.say(await link_code(main))  # ...which is main's other half: one person

    assert await probe.balance(main) == 5  # the check-in; the gift and reward are taken back
    assert (await probe.member(main)).growth == 1
    assert [row.status for row in await invite_rows(core)] == ["void"]


async def test_an_invite_of_a_new_account_is_void_when_it_is_linked_to_an_old_member(
    chat, core: Core, probe: Probe, clock
):
    old = chat("old")
    await old.say("hi")
    clock.advance(days=200)
    friend = chat("friend")
    code = await code_of(friend)
    clock.advance(days=1)
    old_tg = chat("old-tg", channel="telegram")
    gift = await old_tg.say(f"invite {code}")  # looks new, is not
    assert gift is not None and gift.text == GIFT.format(balance=20) + PRIVACY_LINE

    await old_tg.say(await link_code(old))
    await old.say("checkin")

    assert await probe.balance(old) == 5
    assert await probe.balance(friend) == 0
    assert [row.status for row in await invite_rows(core)] == ["void"]


async def test_full_width_codes_from_chinese_input_methods_work(chat, probe: Probe):
    alice, bob = chat("alice"), chat("bob")
    code = await code_of(alice)
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in code.lower())

    reply = await bob.say(f"邀请码 {full_width}")

    assert reply is not None and reply.text == GIFT.format(balance=20) + PRIVACY_LINE


async def test_linking_while_the_invitee_checks_in_never_deadlocks(chat, probe: Probe):
    for round_ in range(6):
        inviter, invitee = chat(f"a{round_}"), chat(f"a{round_}-tg", channel="telegram")
        await invitee.say(f"invite {await code_of(inviter)}")
        code = await link_code(invitee)

        replies = await asyncio.gather(invitee.say("checkin"), inviter.say(code))

        texts = [r.text for r in replies if r is not None]
        assert not [t for t in texts if t.startswith("Sorry, something went wrong")], texts
        assert await probe.balance(inviter) == 5  # the check-in; the self-invite is undone
