"""First contact through the console door, on both backends."""

from __future__ import annotations


async def test_first_checkin_credits_five_points(chat):
    alice = chat("alice")
    reply = await alice.say("checkin")
    assert reply is not None
    assert reply.text.splitlines()[0] == "Checked in! +5 points, 1-day streak. Balance: 5."
