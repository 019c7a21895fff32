"""The outbox sender against scripted apps: what each answer of an app leads to."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta

from bot.core.messages import Reply
from bot.core.ports import Delivery, Senders
from bot.jobs.embedded import Embedded
from bot.jobs.env import JobEnv
from bot.jobs.outbox import degraded
from bot.jobs.pushes import push_to_chat, push_to_member
from handlers.nudges import TEXTS
from storage import nudges, outbox
from storage.outbox import Target
from tests.conftest import SHANGHAI, START
from tests.jobs.conftest import Call, FakeApp, identity, pushes

RATE_LIMITED = Delivery(False, "rate-limited", retry_after=3)
BLOCKED = Delivery(False, "blocked", final=True)
OUTSIDE_WINDOW = Delivery(False, "outside-window", hold=True)
ERROR = Delivery(False, "error")


async def queue(env, member_id, *, kind="tier-change", key="k1", text="hello"):
    async with env.services.db.transaction() as session:
        return await push_to_member(
            session,
            env.services,
            member_id,
            kind,
            key,
            lambda t: Reply(text),
            channels=env.channels,
        )


def override(env, section, **values):
    rules = env.services.rules
    changed = getattr(rules, section).model_copy(update=values)
    env.services.rules = rules.model_copy(update={section: changed})


async def test_a_push_goes_to_the_members_newest_account_once(core, env, new_member, telegram):
    member_id = await new_member("telegram", "111")
    await queue(env, member_id)

    assert await env.sender.drain() == 1
    assert await env.sender.drain() == 0

    assert telegram.calls == [Call("send", "111", "hello")]
    [push] = await pushes(core)
    assert (push.state, push.attempts, push.message_id, push.sent_at) == ("sent", 1, "100", START)


async def test_rate_limited_push_goes_once_after_retry_after(
    core, env, new_member, telegram, clock
):
    member_id = await new_member("telegram", "111")
    await queue(env, member_id)
    telegram.answer(RATE_LIMITED)

    await env.sender.drain()
    [push] = await pushes(core)
    assert (push.state, push.attempts, push.last_error) == ("pending", 0, "rate-limited")
    assert push.next_attempt_at == START + timedelta(seconds=3)

    clock.advance(seconds=2)
    assert await env.sender.drain() == 0
    clock.advance(seconds=1)
    assert await env.sender.drain() == 1
    assert [c.op for c in telegram.calls] == ["send", "send"]
    assert (await pushes(core))[0].state == "sent"


async def test_a_retry_after_of_zero_still_waits_a_second(core, env, new_member, telegram):
    await queue(env, await new_member("telegram", "111"))
    telegram.answer(Delivery(False, "rate-limited", retry_after=0))

    await env.sender.drain()

    [push] = await pushes(core)
    assert (push.state, push.next_attempt_at) == ("pending", START + timedelta(seconds=1))
    assert len(telegram.calls) == 1


async def test_blocked_push_fails_once_and_marks_the_account(
    core, env, new_member, telegram, clock
):
    member_id = await new_member("telegram", "111")
    await queue(env, member_id)
    telegram.answer(BLOCKED)

    await env.sender.drain()
    clock.advance(days=1)
    await env.sender.drain()

    assert len(telegram.calls) == 1
    [push] = await pushes(core)
    assert (push.state, push.last_error, push.attempts) == ("failed", "blocked", 1)
    account = await identity(core, "telegram", "111")
    assert (account.unreachable, account.send_error) == (True, "telegram:blocked")
    assert await queue(env, member_id, key="k2") is None  # nobody left to reach


async def test_wechat_push_is_held_until_the_follower_writes_then_sent(
    core, env, new_member, wechat, clock
):
    member_id = await new_member("wechat", "openid-1")
    await queue(env, member_id)
    wechat.answer(OUTSIDE_WINDOW)

    await env.sender.drain()
    clock.advance(days=3)
    await env.sender.drain()
    [push] = await pushes(core)
    assert (push.state, push.last_error, len(wechat.calls)) == ("held", "outside-window", 1)

    async with env.services.db.transaction() as session:  # the follower writes again
        await outbox.release_held(session, "wechat", "openid-1", clock.now())
    await env.sender.drain()

    assert [c.chat_id for c in wechat.calls] == ["openid-1", "openid-1"]
    assert (await pushes(core))[0].state == "sent"


async def test_a_held_push_fails_when_the_follower_never_writes(
    core, env, new_member, wechat, clock
):
    override(env, "outbox", hold_days=7)
    member_id = await new_member("wechat", "openid-1")
    await queue(env, member_id)
    wechat.answer(OUTSIDE_WINDOW)
    await env.sender.drain()

    clock.advance(days=7)
    await env.sender.drain()

    [push] = await pushes(core)
    assert (push.state, push.last_error) == ("failed", "hold-expired")
    assert len(wechat.calls) == 1


async def test_other_failures_back_off_then_fail_with_the_last_reason(
    core, env, new_member, telegram, clock
):
    override(env, "outbox", max_attempts=3, backoff_seconds=30, backoff_cap_seconds=3600)
    member_id = await new_member("telegram", "111")
    await queue(env, member_id)
    telegram.answer(ERROR, ERROR, Delivery(False, "server-error"))

    waits = []
    for _ in range(2):
        now = clock.now()
        await env.sender.drain()
        [push] = await pushes(core)
        waits.append((push.next_attempt_at - now).total_seconds())
        clock.set(push.next_attempt_at)
    await env.sender.drain()

    assert 15 <= waits[0] <= 30 and 30 <= waits[1] <= 60
    [push] = await pushes(core)
    assert (push.state, push.attempts, push.last_error) == ("failed", 3, "server-error")
    assert (await identity(core, "telegram", "111")).unreachable is False


async def test_a_sender_that_raises_is_a_failed_attempt(core, env, new_member, telegram):
    async def broken(chat_id, reply):
        raise ConnectionError("reset")

    telegram.send = broken
    member_id = await new_member("telegram", "111")
    await queue(env, member_id)

    await env.sender.drain()

    [push] = await pushes(core)
    assert (push.state, push.attempts, push.last_error) == ("pending", 1, "exception")


def local(hour, minute=0, days=0):
    return datetime(2026, 3, 10, hour, minute, tzinfo=SHANGHAI) + timedelta(days=days)


async def test_a_nudge_found_at_night_waits_for_the_morning(core, env, new_member, telegram, clock):
    member_id = await new_member("telegram", "111")
    clock.set(local(23))
    await queue(env, member_id, kind="birthday")

    await env.sender.drain()
    clock.set(local(7, 59, days=1))
    await env.sender.drain()
    assert telegram.calls == []

    clock.set(local(8, days=1))
    await env.sender.drain()
    assert len(telegram.calls) == 1


async def test_a_nudge_retried_into_the_night_waits_without_losing_an_attempt(
    core, env, new_member, telegram, clock
):
    member_id = await new_member("telegram", "111")
    clock.set(local(21, 59))
    await queue(env, member_id, kind="reminder")
    clock.set(local(22, 30))

    await env.sender.drain()

    [push] = await pushes(core)
    assert telegram.calls == []
    assert (push.state, push.attempts, push.last_error) == ("pending", 0, "quiet-hours")
    assert push.next_attempt_at == local(8, days=1)


async def test_a_notice_is_sent_at_night(core, env, new_member, telegram, clock):
    member_id = await new_member("telegram", "111")
    clock.set(local(23))
    await queue(env, member_id, kind="tier-change")
    await env.sender.drain()
    assert len(telegram.calls) == 1


async def test_a_member_who_mutes_gets_no_marketing_push_queued_before(
    core, env, new_member, telegram, clock
):
    member_id = await new_member("telegram", "111")
    await queue(env, member_id, kind="campaign")
    await queue(env, member_id, kind="tier-change", key="k2")
    async with env.services.db.transaction() as session:
        await nudges.mute(session, member_id, clock.now())

    await env.sender.drain()

    states = [(p.kind, p.state, p.last_error) for p in await pushes(core)]
    assert states == [("campaign", "failed", "muted"), ("tier-change", "sent", None)]
    assert len(telegram.calls) == 1
    assert await queue(env, member_id, kind="dormant", key="k3") is None
    # Muting is the member's choice, not the app's refusal: their account stays reachable.
    account = await identity(core, "telegram", "111")
    assert (account.unreachable, account.send_error) == (False, None)
    assert await queue(env, member_id, kind="tier-change", key="k4") is not None


async def test_pushes_of_apps_without_a_sender_here_wait(core, new_member, telegram):
    senders = Senders()
    senders.add(telegram)
    only_telegram = JobEnv(core.services, senders, TEXTS)
    member_id = await new_member("wechat", "openid-1")
    async with core.services.db.transaction() as session:
        await push_to_member(
            session, core.services, member_id, "tier-change", "k1", lambda t: Reply("hi")
        )

    assert await only_telegram.sender.drain() == 0
    [push] = await pushes(core)
    assert (push.state, push.attempts) == ("pending", 0)


async def test_one_chats_pushes_go_in_the_order_queued(core, env, new_member, telegram):
    member_id = await new_member("telegram", "111")
    for i in range(5):
        await queue(env, member_id, key=f"k{i}", text=f"m{i}")

    await env.sender.drain()

    assert [c.text for c in telegram.calls] == ["m0", "m1", "m2", "m3", "m4"]


async def post(env, key="post", text="10 left"):
    async with env.services.db.transaction() as session:
        target = Target("telegram", "-100", None, outbox.POST)
        return await push_to_chat(
            session, env.services, target, "flashsale-announce", key, Reply(text)
        )


async def edit(env, post_id, key, text):
    async with env.services.db.transaction() as session:
        return await outbox.enqueue_edit(
            session, key, post_id, Reply(text).to_json(), env.services.clock.now()
        )


async def test_an_edit_changes_the_posted_message(core, env, telegram):
    post_id = await post(env)
    await env.sender.drain()
    await edit(env, post_id, "e1", "9 left")
    await edit(env, post_id, "e2", "8 left")

    await env.sender.drain()

    assert telegram.calls == [
        Call("post", "-100", "10 left"),
        Call("edit", "-100", "8 left", "100"),
    ]


async def test_an_edit_of_a_post_that_failed_fails(core, env, telegram):
    post_id = await post(env)
    telegram.answer(Delivery(False, "chat-not-found", final=True))
    await env.sender.drain()
    await edit(env, post_id, "e1", "9 left")

    await env.sender.drain()

    assert [(p.mode, p.state, p.last_error) for p in await pushes(core)] == [
        ("post", "failed", "chat-not-found"),
        ("edit", "failed", "original-not-sent"),
    ]


async def test_shutdown_is_bounded_and_hands_unsent_pushes_back(core, env, new_member, telegram):
    override(env, "outbox", shutdown_seconds=0.2)
    started = asyncio.Event()

    async def hangs(chat_id, reply):
        started.set()
        await asyncio.sleep(3600)

    telegram.send = hangs
    await queue(env, await new_member("telegram", "111"))
    scheduler = Embedded(env, tick_seconds=3600)
    await scheduler.start()
    await asyncio.wait_for(started.wait(), 5)

    await asyncio.wait_for(scheduler.stop(), 2)

    [push] = await pushes(core)
    assert (push.state, push.attempts, push.leased_until, push.last_error) == (
        "pending",
        0,
        None,
        "interrupted",
    )
    assert push.next_attempt_at == START


async def test_metrics_count_sends_and_failures_by_reason(core, env, new_member, telegram):
    member_id = await new_member("telegram", "111")
    await queue(env, member_id, key="k1")
    await queue(env, member_id, key="k2")
    telegram.answer(Delivery.ok("1"), RATE_LIMITED)

    await env.sender.drain()
    await env.sender.metrics.refresh(env.services.db, env.services.clock.now())

    text = env.services.metrics.render().decode()
    assert 'memberbot_outbox_sent_total{channel="telegram",kind="tier-change"} 1.0' in text
    failures = 'memberbot_outbox_failures_total{channel="telegram",outcome="retry",reason="%s"}'
    assert f"{failures % 'rate-limited'} 1.0" in text
    assert 'memberbot_outbox_depth{channel="telegram",state="sent"} 1.0' in text
    assert 'memberbot_outbox_depth{channel="telegram",state="pending"} 1.0' in text


async def test_health_is_degraded_when_a_due_push_waits_past_the_limit(
    core, env, new_member, clock
):
    override(env, "outbox", degraded_after_seconds=600)
    member_id = await new_member("console", "alice")
    async with env.services.db.transaction() as session:  # no console sender here
        await push_to_member(
            session, env.services, member_id, "tier-change", "k1", lambda t: Reply("x")
        )

    clock.advance(seconds=600)
    assert await degraded(env.services) is None
    clock.advance(seconds=1)
    assert await degraded(env.services) == "oldest due push waiting 601 s (limit 600 s)"


class NoticeApp(FakeApp):
    """An app with a way of its own for some kinds (as WeChat's template messages)."""

    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.notices: list[tuple[str, str, dict[str, str]]] = []

    async def send_notice(self, chat_id, kind, reply, rules):
        self.notices.append((chat_id, kind, dict(rules.wechat.templates)))
        return await self.send(chat_id, reply)


async def test_a_pusher_with_send_notice_gets_each_private_pushs_kind_and_the_rules(
    core, new_member
):
    app = NoticeApp("telegram")
    senders = Senders()
    senders.add(app)
    env = JobEnv(core.services, senders, TEXTS)
    override(env, "wechat", templates={"reminder": "TM-1"})  # the rules as they are now
    member_id = await new_member("telegram", "111")
    await queue(env, member_id, kind="reminder")
    await post(env)  # a group post is not a notice

    await env.sender.drain()

    assert app.notices == [("111", "reminder", {"reminder": "TM-1"})]
    assert [c.op for c in app.calls] == ["send", "post"]


# -- pipelined claims, several senders, send slots per app ----------------------------------------


class GatedApp(FakeApp):
    """Sends (all, or those of the texts in `gated`) wait at a gate; the most sends seen
    under way at once is kept."""

    def __init__(self, channel: str, gated: set[str] | None = None) -> None:
        super().__init__(channel)
        self.gate = asyncio.Event()
        self.gated = gated
        self.under_way = 0
        self.most = 0

    async def send(self, chat_id, reply):
        self.under_way += 1
        self.most = max(self.most, self.under_way)
        if self.gated is None or reply.text in self.gated:
            await self.gate.wait()
        self.under_way -= 1
        return await super().send(chat_id, reply)


async def test_the_next_batch_is_claimed_while_one_is_sent_and_a_chats_order_holds(
    core, new_member, monkeypatch
):
    app = GatedApp("telegram", gated={"a1"})
    senders = Senders()
    senders.add(app)
    env = JobEnv(core.services, senders, TEXTS)
    override(env, "outbox", batch=2, concurrency=1)
    alice, bob = await new_member("telegram", "111"), await new_member("telegram", "222")
    for i in range(3):
        await queue(env, alice, key=f"a{i}", text=f"a{i}")
    await queue(env, bob, key="b0", text="b0")
    await queue(env, alice, key="a3", text="a3")
    claims = []
    claim = outbox.claim_due

    async def counted(*args, **kwargs):
        claims.append(len(batch := await claim(*args, **kwargs)))
        return batch

    monkeypatch.setattr(outbox, "claim_due", counted)

    draining = asyncio.create_task(env.sender.drain())
    async with asyncio.timeout(5):
        while app.under_way == 0 or len(claims) < 2:
            await asyncio.sleep(0.01)
    # a0 went, a1 is held: fewer than a batch left, so the next batch is claimed already.
    # (b0 may have gone too: the one send slot serves another chat while a0's mark is written.)
    alice_sent = [c.text for c in app.calls if c.text.startswith("a")]
    assert (claims[:2], alice_sent) == ([2, 2], ["a0"])
    app.gate.set()

    assert await draining == 5
    texts = [c.text for c in app.calls]
    assert [t for t in texts if t.startswith("a")] == ["a0", "a1", "a2", "a3"]
    assert sorted(texts) == ["a0", "a1", "a2", "a3", "b0"]
    assert [p.state for p in await pushes(core)] == ["sent"] * 5


async def test_several_senders_draining_at_once_send_each_push_once(
    core, env, new_member, telegram
):
    override(env, "outbox", batch=7, concurrency=3)
    for i in range(40):
        member_id = await new_member("telegram", str(1000 + i))
        for k in range(3):
            await queue(env, member_id, key=f"{i}:{k}", text=f"{i}:{k}")

    async def slowly(chat_id, reply):
        await asyncio.sleep(0)  # let the other senders claim meanwhile
        return telegram._next(Call("send", chat_id, reply.text))

    telegram.send = slowly
    others = [JobEnv(env.services, env.senders, TEXTS).sender for _ in range(3)]

    handled = await asyncio.gather(env.sender.drain(), *(s.drain() for s in others))

    assert sum(handled) == 120
    assert sorted(c.text for c in telegram.calls) == sorted(
        f"{i}:{k}" for i in range(40) for k in range(3)
    )
    assert [p.state for p in await pushes(core)] == ["sent"] * 120


async def test_wechat_followers_have_send_slots_of_their_own(core, new_member):
    telegram, wechat = GatedApp("telegram"), GatedApp("wechat")
    senders = Senders()
    senders.add(telegram)
    senders.add(wechat)
    env = JobEnv(core.services, senders, TEXTS)
    override(env, "outbox", concurrency=2, wechat_concurrency=3)
    for i in range(5):
        await queue(env, await new_member("telegram", f"t{i}"), key=f"t{i}")
        await queue(env, await new_member("wechat", f"w{i}"), key=f"w{i}")

    draining = asyncio.create_task(env.sender.drain())
    async with asyncio.timeout(5):
        while telegram.under_way < 2 or wechat.under_way < 3:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    telegram.gate.set()
    wechat.gate.set()

    assert await draining == 10
    assert (telegram.most, wechat.most) == (2, 3)


async def test_a_push_whose_lease_ran_out_while_queued_goes_once(
    core, env, new_member, telegram, clock
):
    """Slow sends ahead of it: a claimed push still waiting when its lease runs out is left
    to the next claim, never sent by both; nor is the push whose send outlived its lease
    claimed again while that send is under way (the next batch is claimed meanwhile)."""
    override(env, "outbox", batch=2, concurrency=1, lease_seconds=5)
    for i in range(3):
        await queue(env, await new_member("telegram", f"t{i}"), key=f"k{i}", text=f"t{i}")
    real = telegram.send

    async def slow(chat_id, reply):
        clock.advance(seconds=10)
        return await real(chat_id, reply)

    telegram.send = slow
    for _ in range(10):
        if not await env.sender.drain():
            break

    # Chats go in parallel: their order is free, each is sent to once.
    assert sorted(call.chat_id for call in telegram.calls) == ["t0", "t1", "t2"]
    assert [push.state for push in await pushes(core)] == ["sent"] * 3


# -- sent marks written in groups, after the send slot is freed ------------------------------


async def until_sent(app, count):
    async with asyncio.timeout(5):
        while len(app.calls) < count:
            await asyncio.sleep(0.01)


async def test_a_chats_next_push_waits_for_the_mark_while_the_slot_serves_another_chat(
    core, env, new_member, telegram, monkeypatch
):
    override(env, "outbox", concurrency=1)
    alice, bob = await new_member("telegram", "111"), await new_member("telegram", "222")
    await queue(env, alice, key="a0", text="a0")
    await queue(env, alice, key="a1", text="a1")
    await queue(env, bob, key="b0", text="b0")
    gate, written = asyncio.Event(), outbox.mark_sent_group

    async def gated(*args):
        await gate.wait()
        return await written(*args)

    monkeypatch.setattr(outbox, "mark_sent_group", gated)
    draining = asyncio.create_task(env.sender.drain())
    await until_sent(telegram, 2)
    for _ in range(20):  # a1 would have had every chance to go
        await asyncio.sleep(0)
    # One slot: a0 went, its mark is not written, so a1 waits; the slot sent b0 meanwhile.
    assert [c.text for c in telegram.calls] == ["a0", "b0"]
    gate.set()

    assert await draining == 3
    assert [c.text for c in telegram.calls] == ["a0", "b0", "a1"]
    assert [p.state for p in await pushes(core)] == ["sent"] * 3


async def test_a_crash_before_the_grouped_mark_sends_the_push_again_never_loses_it(
    core, env, new_member, telegram, clock, monkeypatch
):
    await queue(env, await new_member("telegram", "111"))
    never, written = asyncio.Event(), outbox.mark_sent_group

    async def dies(*args):  # the process dies before the group's statement runs
        await never.wait()

    monkeypatch.setattr(outbox, "mark_sent_group", dies)
    draining = asyncio.create_task(env.sender.drain())
    await until_sent(telegram, 1)
    draining.cancel()  # the crash: nothing given back, nothing marked
    assert env.sender.marks._writing is not None
    env.sender.marks._writing.cancel()
    monkeypatch.setattr(outbox, "mark_sent_group", written)
    [push] = await pushes(core)
    assert (push.state, push.attempts) == ("pending", 1)

    restarted = JobEnv(env.services, env.senders, TEXTS).sender
    assert await restarted.drain() == 0  # leased still
    clock.advance(seconds=env.services.rules.outbox.lease_seconds)
    assert await restarted.drain() == 1

    assert [(c.chat_id, c.text) for c in telegram.calls] == [("111", "hello")] * 2
    [push] = await pushes(core)
    assert (push.state, push.attempts, push.message_id) == ("sent", 2, "101")


async def test_two_senders_of_one_push_never_both_mark_it(core, new_member, clock, caplog):
    """The first sender's send outlives its lease; the second claims the push, sends it
    and marks it; the first's mark then finds the push no longer its own."""
    slow, fast = GatedApp("telegram"), FakeApp("telegram")
    slow._ids = itertools.count(500)  # its message ids apart from the second's
    first, second = Senders(), Senders()
    first.add(slow)
    second.add(fast)
    env = JobEnv(core.services, first, TEXTS)
    override(env, "outbox", lease_seconds=5)
    await queue(env, await new_member("telegram", "111"))
    draining = asyncio.create_task(env.sender.drain())
    async with asyncio.timeout(5):
        while slow.under_way == 0:
            await asyncio.sleep(0.01)
    clock.advance(seconds=5)

    assert await JobEnv(core.services, second, TEXTS).sender.drain() == 1
    slow.gate.set()
    assert await draining == 1

    assert (len(slow.calls), len(fast.calls)) == (1, 1)  # at least once: both went out
    [push] = await pushes(core)
    assert (push.state, push.attempts, push.message_id) == ("sent", 2, "100")
    assert "outbox lease lost" in caplog.text
