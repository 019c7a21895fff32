"""/makeup with an injected clock: the window, the monthly limit, the streak continued."""

from __future__ import annotations

import asyncio

import pytest

from storage import ledger
from tests.handlers.conftest import Entry
from tests.http.conftest import SIGNATURE_HEADER, order_body, sign


@pytest.fixture
async def alice_missed_a_day(chat, clock):
    """Alice checks in on 03-10 and 03-11, misses 03-12; it is now 03-13 (12 points)."""
    alice = chat("alice")
    await alice.say("checkin")
    clock.advance(days=1)
    await alice.say("checkin")
    clock.advance(days=2)
    return alice


async def test_makeup_fills_the_missed_day_and_the_streak_runs_on(alice_missed_a_day, probe):
    alice = alice_missed_a_day
    member = await probe.member(alice)
    async with probe.core.services.db.transaction() as session:
        await ledger.earn(
            session, member.id, 30, "gift", "gift", probe.core.services.clock.now(), expiry_days=9
        )

    reply = await alice.say("补签")
    checked = await alice.say("checkin")

    assert reply.text == (
        "Made up 2026-03-12 for 20 points. Streak: 3 days. Balance: 20. "
        "Make-ups left this month: 1."
    )
    assert checked.text.startswith("Checked in! +10 points, 4-day streak.")
    assert [d.day.isoformat() for d in await probe.checkins(alice)] == [
        "2026-03-10",
        "2026-03-11",
        "2026-03-12",
        "2026-03-13",
    ]
    assert (await probe.checkins(alice))[2].points == 0
    assert Entry("spend", -20, "makeup") in await probe.entries(alice)


async def test_only_days_within_the_window_and_a_few_a_month(chat, clock, probe, core):
    alice = chat("alice")
    await alice.say("checkin")  # 03-10
    member = await probe.member(alice)
    async with core.services.db.transaction() as session:
        await ledger.earn(session, member.id, 500, "gift", "gift", clock.now(), expiry_days=99)
    clock.advance(days=5)  # 03-15: 03-12, 03-13, 03-14 missed (03-11 is past the window)

    made = [(await alice.say("makeup")).text for _ in range(3)]

    assert made[0].startswith("Made up 2026-03-14 for 20 points. Streak: 1 days.")
    assert made[1].startswith("Made up 2026-03-13 for 20 points. Streak: 2 days.")
    assert made[2] == "You have used this month's 2 make-ups."
    clock.advance(days=20)  # 04-04: a new month
    assert (await alice.say("makeup")).text.startswith("Made up 2026-04-03")


async def test_nothing_to_make_up_and_too_few_points(chat, clock):
    alice = chat("alice")
    await alice.say("checkin")
    assert (await alice.say("makeup")).text == (
        "Nothing to make up: no missed day in the last 3 days."
    )
    clock.advance(days=2)
    assert (await alice.say("makeup")).text == "A make-up costs 20 points; you have 5."


async def test_member_day_multiplies_checkin_points(chat, clock):
    alice = chat("alice")
    clock.advance(days=8)  # 03-18, the default member day

    reply = await alice.say("checkin")

    assert reply.text.startswith("Checked in! +10 points, 1-day streak.")
    assert "It's member day: check-in points ×2 today!" in reply.text


async def test_concurrent_makeups_respect_the_monthly_limit(
    chat, clock, probe, core, no_flood_limit
):
    alice = chat("alice")
    await alice.say("checkin")
    member = await probe.member(alice)
    async with core.services.db.transaction() as session:
        await ledger.earn(session, member.id, 500, "gift", "gift", clock.now(), expiry_days=99)
    clock.advance(days=4)

    replies = await asyncio.gather(*(alice.say("makeup") for _ in range(6)))

    assert sum(r.text.startswith("Made up") for r in replies) == 2
    assert await probe.balance(alice) == 5 + 500 - 40


async def test_member_day_multiplies_order_points_when_the_rules_say_so(core, http, clock):
    rules = core.services.rules
    core.services.rules = rules.model_copy(
        update={"rewards": rules.rewards.model_copy(update={"member_day_orders": True})}
    )
    clock.advance(days=8)  # 03-18
    body = order_body("M-1", amount="50.00")

    async with http.post("/api/orders", data=body, headers={SIGNATURE_HEADER: sign(body)}) as resp:
        assert (await resp.json())["points"] == 100
