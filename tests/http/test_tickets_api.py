"""/api/tickets: support staff's tools read and work complaint tickets; the member hears."""

from __future__ import annotations

from typing import Any

from bot.jobs.env import JobEnv
from handlers.nudges import TEXTS
from storage import members, roles
from tests.conftest import START
from tests.http.conftest import AUTH
from tests.statements import statements

FILED_AT = "2026-03-10T02:00:00+00:00"
DUE = "2026-03-11T02:00:00+00:00"


async def call(http, method: str, path: str, body: Any = None, **headers: str):
    async with http.request(method, path, json=body, headers=headers or AUTH) as resp:
        return resp.status, await resp.json()


async def staff(core, chat, name: str) -> int:
    await chat(name).say("help")
    async with core.services.db.transaction() as session:
        found = await members.find_by_identity(session, "console", name)
        assert found is not None
        await roles.grant(session, found.id, roles.STAFF, 0, START)
        return found.id


async def test_a_ticket_worked_through_the_api(core, chat, http):
    alice = chat("alice")
    await alice.say("/complain the kettle leaks")
    sam = await staff(core, chat, "sam")

    status, listed = await call(http, "GET", "/api/tickets?state=open")
    assert status == 200
    assert [t["number"] for t in listed] == ["C-000001"]

    assigned = await call(
        http,
        "POST",
        "/api/tickets/C-000001/assign",
        {"staff": {"channel": "console", "external_id": "sam"}, "by": "Olga"},
    )
    assert assigned[0] == 200
    assert assigned[1]["assignee"] == {"member_id": sam, "name": "sam"}
    replied = await call(
        http, "POST", "/api/tickets/C-000001/reply", {"text": "A new one is coming.", "by": "Olga"}
    )
    assert replied[0] == 200
    status, _ = await call(http, "POST", "/api/tickets/1/resolve", {"text": "Sent."})
    assert status == 200
    await JobEnv(core.services, core.services.senders, TEXTS).sender.drain()
    assert [r.text.split("\n")[0] for r in alice.pushed()] == [
        "Reply on your ticket C-000001:",
        "Your ticket C-000001 is resolved.",
    ]
    await alice.say("/rate C-000001 4")

    status, shown = await call(http, "GET", "/api/tickets/C-000001")

    assert status == 200
    assert shown == {
        "number": "C-000001",
        "state": "resolved",
        "category": "other",
        "member": shown["member"],
        "assignee": {"member_id": sam, "name": "sam"},
        "created_at": FILED_AT,
        "first_response_due": DUE,
        "first_response_at": FILED_AT,
        "escalated": False,
        "score": 4,
        "refers_to": None,
        "messages": [
            {"at": FILED_AT, "from": "member", "text": "the kettle leaks"},
            {"at": FILED_AT, "from": "staff", "text": "A new one is coming."},
            {"at": FILED_AT, "from": "staff", "text": "Sent."},
        ],
        "events": [
            {"at": FILED_AT, "actor": "alice", "action": "filed (other)"},
            {"at": FILED_AT, "actor": "Olga", "action": "assigned to sam"},
            {"at": FILED_AT, "actor": "Olga", "action": "replied"},
            {"at": FILED_AT, "actor": "operator", "action": "resolved"},
            {"at": FILED_AT, "actor": "alice", "action": "rated 4"},
        ],
    }


async def test_refusals_are_json_with_their_status(core, chat, http):
    await chat("alice").say("/complain late")
    await staff(core, chat, "sam")

    assert await call(http, "GET", "/api/tickets/C-000099") == (404, {"error": "unknown ticket"})
    assert await call(http, "GET", "/api/tickets?state=lost") == (
        422,
        {
            "error": "state must be one of open, assigned, waiting, resolved, closed",
            "field": "state",
        },
    )
    assert (await call(http, "POST", "/api/tickets/1/reply", {"text": ""}))[0] == 422
    assert (await call(http, "POST", "/api/tickets/1/reply", {"txt": "hi"}))[1]["field"] == "txt"
    not_staff = {"staff": {"channel": "console", "external_id": "alice"}}
    assert (await call(http, "POST", "/api/tickets/1/assign", not_staff))[0] == 422
    await call(http, "POST", "/api/tickets/1/resolve", {})
    assert await call(http, "POST", "/api/tickets/1/resolve", {}) == (
        409,
        {"error": "C-000001 is resolved already."},
    )
    assert (await call(http, "GET", "/api/tickets", Authorization="Bearer nope"))[0] == 401


async def _listed_in_statements(core, http) -> tuple[int, list[dict[str, Any]]]:
    """GET /api/tickets, and how many SQL statements answering it ran."""
    with statements(core.services.db) as ran:
        status, listed = await call(http, "GET", "/api/tickets")
    assert status == 200
    return len(ran), listed


async def test_the_list_names_each_assignee_in_one_statement(core, chat, http):
    await chat("alice").say("/complain the kettle leaks")
    sam = await staff(core, chat, "sam")
    await call(
        http,
        "POST",
        "/api/tickets/1/assign",
        {"staff": {"channel": "console", "external_id": "sam"}},
    )
    alone, _ = await _listed_in_statements(core, http)
    for name in ("bob", "carol", "dave"):
        await chat(name).say(f"/complain {name}'s order is late")
    olga = await staff(core, chat, "olga")
    for number, who in (("2", "olga"), ("3", "sam")):
        to = {"staff": {"channel": "console", "external_id": who}}
        assert (await call(http, "POST", f"/api/tickets/{number}/assign", to))[0] == 200

    many, listed = await _listed_in_statements(core, http)

    assert many == alone == 1
    assert [(t["number"], t["assignee"]) for t in listed] == [
        ("C-000001", {"member_id": sam, "name": "sam"}),
        ("C-000002", {"member_id": olga, "name": "olga"}),
        ("C-000003", {"member_id": sam, "name": "sam"}),
        ("C-000004", None),
    ]
