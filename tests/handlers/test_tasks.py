"""/tasks: today's tasks with progress, one-off tasks paid once."""

from __future__ import annotations

import asyncio

from bot.admin.events import post_event
from storage import communities
from tests.handlers.conftest import Entry


async def test_tasks_show_progress_and_pay_one_offs_once(core, chat, probe, no_flood_limit):
    alice = chat("alice")
    await alice.say("checkin")
    await alice.say("/birthday 05-20")
    await alice.say("yes")
    for i in range(2):
        await post_event(
            core.services,
            {"event_id": f"r{i}", "channel": "console", "external_id": "alice", "type": "review"},
        )

    first = await alice.say("tasks")

    assert first.text == (
        "Today:\n"
        "✅ Check in (/checkin)\n"
        "⬜ Write a review: 2/3 (+10 points each)\n"
        "⬜ Share with friends: 0/3 (+5 points each)\n"
        "Once:\n"
        "✅ Set your birthday (/birthday MM-DD) (just paid!)\n"
        "⬜ Join a community (/communities) (+20 points)\n"
        "⬜ Link WeChat and Telegram (/link) (+30 points)\n"
        "⬜ Place your first order (+50 points)\n"
        "You earned 20 points for tasks done."
    )
    again = await asyncio.gather(*(alice.say("任务") for _ in range(5)))
    assert all("just paid" not in r.text and "You earned" not in r.text for r in again)
    assert [e for e in await probe.entries(alice) if e.reason.startswith("task")] == [
        Entry("earn", 20, "task birthday")
    ]
    assert await probe.balance(alice) == 5 + 20 + 20


async def test_joining_a_community_is_paid_at_the_next_tasks(core, chat, probe):
    alice = chat("alice")
    async with core.services.db.transaction() as session:
        await communities.upsert(
            session, "tea", {"names": {"en": "Tea"}}, core.services.clock.now()
        )
    await alice.say("join tea")

    reply = await alice.say("/tasks")

    assert "✅ Join a community (/communities) (just paid!)" in reply.text
    assert "⬜ Check in (/checkin)" in reply.text
    assert await probe.balance(alice) == 20
