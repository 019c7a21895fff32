"""The operator API over held invite rewards: list by state, approve (paid once), reject."""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Any

import pytest

from storage import members
from tests.conftest import ADMIN_TOKEN, START
from tests.http.conftest import AUTH

CREATED = START.astimezone(UTC).isoformat()
HELD_PUSH = (
    "A friend you invited checked in for the first time. You have had many invite rewards "
    "today, so this one waits for a quick review."
)
PAID_PUSH = (
    "A friend you invited checked in for the first time: +50 points and +50 growth for you. "
    "Balance: 50."
)
REJECTED_PUSH = "An invite reward of yours was not approved after review."


async def call(http, method: str, path: str, body: Any = None, **headers: str):
    """(status, JSON) of one request, with the bearer token unless headers say otherwise."""
    async with http.request(method, path, json=body, headers=headers or AUTH) as resp:
        return resp.status, await resp.json()


async def member_id(core, name: str) -> int:
    async with core.services.db.reader() as session:
        found = await members.find_by_identity(session, "console", name)
    assert found is not None
    return found.id


async def invited_by_alice(core, chat, name: str) -> None:
    """`name` joins with Alice's invite code (the invitee's side is rewarded at once)."""
    async with core.services.db.reader() as session:
        alice = await members.find_by_identity(session, "console", "alice")
    assert alice is not None
    reply = await chat(name).say(f"invite {alice.invite_code}")
    assert reply is not None and reply.text.startswith("Welcome gift: +20 points"), reply


@pytest.fixture
async def held(core, chat, clock) -> dict[str, Any]:
    """Bob, invited by Alice, checked in once past her daily cap (0 here): held for review."""
    rules = core.services.rules
    capped = rules.invites.model_copy(update={"daily_review_threshold": 0})
    core.services.rules = rules.model_copy(update={"invites": capped})
    await chat("alice").say("help")
    await invited_by_alice(core, chat, "bob")
    clock.advance(hours=1)
    await chat("bob").say("checkin")
    await chat("alice").core.services.pushes.settle()
    assert [r.text for r in chat("alice").pushed()] == [HELD_PUSH]
    return {
        "id": 1,
        "inviter_id": await member_id(core, "alice"),
        "invitee_id": await member_id(core, "bob"),
        "via": "code",
        "status": "review",
        "created_at": CREATED,
        "decided_at": None,
        "reward_day": "2026-03-10",
    }


async def alice_points(admin) -> tuple[int, int, list[tuple[str, int, str]]]:
    """Alice's balance, growth and ledger (newest first), through the members API."""
    _, member = await admin.member("console", "alice")
    _, ledger = await admin.ledger("console", "alice")
    return (
        member["points"],
        member["growth"],
        [(e["kind"], e["amount"], e["reason"]) for e in ledger],
    )


async def test_list_defaults_to_invites_in_review(http, held):
    assert await call(http, "GET", "/api/invites") == (200, [held])
    assert await call(http, "GET", "/api/invites?status=review") == (200, [held])


async def test_list_by_each_state_newest_first(core, http, chat, held):
    await invited_by_alice(core, chat, "carol")
    await invited_by_alice(core, chat, "dave")
    carol, dave = await member_id(core, "carol"), await member_id(core, "dave")

    status, waiting = await call(http, "GET", "/api/invites?status=waiting")

    assert status == 200
    assert [(i["id"], i["invitee_id"], i["status"], i["reward_day"]) for i in waiting] == [
        (3, dave, "waiting", None),
        (2, carol, "waiting", None),
    ]
    for state in ("rewarded", "rejected", "void"):
        assert await call(http, "GET", f"/api/invites?status={state}") == (200, [])


@pytest.mark.parametrize("status", ["", "held", "REVIEW", "review,waiting"])
async def test_list_of_an_unknown_state_is_422(http, held, status):
    answer = await call(http, "GET", f"/api/invites?status={status}")

    assert answer == (
        422,
        {
            "error": "status must be one of review, waiting, rewarded, rejected, void",
            "field": "status",
        },
    )


async def test_approve_pays_the_inviter_once_and_tells_them(http, admin, chat, held, clock):
    clock.advance(hours=1)

    answer = await call(http, "POST", "/api/invites/1/approve")

    decided = clock.now().astimezone(UTC).isoformat()
    assert answer == (200, {**held, "status": "rewarded", "decided_at": decided})
    assert await alice_points(admin) == (50, 50, [("earn", 50, "invite-reward")])
    await chat("alice").core.services.pushes.settle()
    assert [r.text for r in chat("alice").pushed()] == [PAID_PUSH]
    assert await call(http, "GET", "/api/invites") == (200, [])
    _, rewarded = await call(http, "GET", "/api/invites?status=rewarded")
    assert rewarded == [answer[1]]


async def test_approving_twice_is_409_the_second_time_and_pays_once(http, admin, chat, held):
    first = await call(http, "POST", "/api/invites/1/approve")

    second = await call(http, "POST", "/api/invites/1/approve")

    assert first[0] == 200
    assert second == (
        409,
        {"error": "invite 1 is not in review (it is rewarded)", "invite": first[1]},
    )
    assert await alice_points(admin) == (50, 50, [("earn", 50, "invite-reward")])
    await chat("alice").core.services.pushes.settle()
    assert [r.text for r in chat("alice").pushed()] == [PAID_PUSH]


async def test_reject_pays_nothing_and_tells_the_inviter(http, admin, chat, held):
    status, body = await call(http, "POST", "/api/invites/1/reject")

    assert (status, body["status"]) == (200, "rejected")
    assert body["decided_at"] is not None
    assert await alice_points(admin) == (0, 0, [])
    await chat("alice").core.services.pushes.settle()
    assert [r.text for r in chat("alice").pushed()] == [REJECTED_PUSH]


@pytest.mark.parametrize(("first", "then"), [("reject", "approve"), ("reject", "reject")])
async def test_a_decided_invite_cannot_be_decided_again(http, admin, chat, held, first, then):
    _, decided = await call(http, "POST", f"/api/invites/1/{first}")

    answer = await call(http, "POST", f"/api/invites/1/{then}")

    assert answer == (
        409,
        {"error": "invite 1 is not in review (it is rejected)", "invite": decided},
    )
    assert await alice_points(admin) == (0, 0, [])
    await chat("alice").core.services.pushes.settle()
    assert [r.text for r in chat("alice").pushed()] == [REJECTED_PUSH]


@pytest.mark.parametrize("decision", ["approve", "reject"])
async def test_an_invite_still_waiting_for_a_checkin_cannot_be_decided(
    core, http, chat, held, decision
):
    await invited_by_alice(core, chat, "carol")

    _, (waiting,) = await call(http, "GET", "/api/invites?status=waiting")

    answer = await call(http, "POST", f"/api/invites/2/{decision}")

    assert answer == (
        409,
        {"error": "invite 2 is not in review (it is waiting)", "invite": waiting},
    )


@pytest.mark.parametrize("decision", ["approve", "reject"])
@pytest.mark.parametrize("invite_id", ["2", "0", "99999999999999999", "abc", "-1", "1.0", "١"])
async def test_an_unknown_invite_is_404(http, admin, held, decision, invite_id):
    answer = await call(http, "POST", f"/api/invites/{invite_id}/{decision}")

    assert answer == (404, {"error": f"unknown invite {invite_id}"})
    assert await call(http, "GET", "/api/invites") == (200, [held])


async def test_ten_concurrent_approvals_pay_exactly_once(http, admin, chat, held):
    answers = await asyncio.gather(
        *(call(http, "POST", "/api/invites/1/approve") for _ in range(10))
    )

    assert sorted(status for status, _ in answers) == [200] + [409] * 9
    assert await alice_points(admin) == (50, 50, [("earn", 50, "invite-reward")])
    await chat("alice").core.services.pushes.settle()
    assert [r.text for r in chat("alice").pushed()] == [PAID_PUSH]


async def test_concurrent_approvals_and_rejections_decide_once(http, admin, chat, held):
    answers = await asyncio.gather(
        *(call(http, "POST", f"/api/invites/1/{d}") for d in ["approve", "reject"] * 5)
    )

    winners = [body for status, body in answers if status == 200]
    assert len(winners) == 1
    assert sorted(status for status, _ in answers) == [200] + [409] * 9
    paid = winners[0]["status"] == "rewarded"
    assert await alice_points(admin) == (
        (50, 50, [("earn", 50, "invite-reward")]) if paid else (0, 0, [])
    )
    await chat("alice").core.services.pushes.settle()
    assert len(chat("alice").pushed()) == 1


ROUTES = [
    ("GET", "/api/invites"),
    ("POST", "/api/invites/1/approve"),
    ("POST", "/api/invites/1/reject"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", ADMIN_TOKEN])
async def test_missing_or_wrong_token_is_401_and_decides_nothing(
    http, admin, held, method, path, authorization
):
    headers = {} if authorization is None else {"Authorization": authorization}

    async with http.request(method, path, headers=headers) as resp:
        answer = (resp.status, await resp.json())

    assert answer == (401, {"error": "missing or wrong bearer token"})
    assert await call(http, "GET", "/api/invites") == (200, [held])
    assert await alice_points(admin) == (0, 0, [])
