"""GET /api/members/.../export and DELETE /api/members/...: a member's data, and erasing it."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import Ticket, TicketMessage
from tests.http.conftest import AUTH

PATH = "/api/members/console/alice"


async def _call(http, method: str, path: str, headers=AUTH):
    async with http.request(method, path, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_export_has_every_record_of_the_member(http, chat):
    alice = chat("alice")
    await alice.say("/birthday 05-20")
    await alice.say("yes")
    await alice.say("/checkin")
    await chat("bob").say("/checkin")

    status, body = await _call(http, "GET", PATH + "/export")

    assert status == 200
    data = body["data"]
    [member] = data["members"]
    assert (member["id"], member["birthday"], member["points"]) == (body["member_id"], "05-20", 5)
    assert [(i["channel"], i["external_id"]) for i in data["identities"]] == [("console", "alice")]
    assert [(e["kind"], e["amount"]) for e in data["ledger_entries"]] == [("earn", 5)]
    assert [c["points"] for c in data["checkins"]] == [5]
    assert data["orders"] == [] and data["invites"] == []


async def test_delete_erases_and_the_member_is_unknown_afterwards(http, chat):
    await chat("alice").say("/checkin")

    status, body = await _call(http, "DELETE", PATH)
    assert status == 200 and body["erased"] is True

    assert (await _call(http, "GET", PATH))[0] == 404
    assert (await _call(http, "GET", PATH + "/export"))[0] == 404
    assert (await _call(http, "DELETE", PATH))[0] == 404


async def test_unknown_member_and_missing_token(http):
    assert (await _call(http, "GET", "/api/members/console/nobody/export"))[0] == 404
    assert (await _call(http, "DELETE", "/api/members/console/nobody"))[0] == 404
    assert (await _call(http, "DELETE", PATH, headers={}))[0] == 401
    assert (await _call(http, "GET", PATH + "/export", headers={}))[0] == 401


async def test_export_has_the_conversation_of_the_member_s_complaints(http, chat):
    alice = chat("alice")
    await alice.say("/complain The cup arrived broken")
    await chat("bob").say("/complain Not mine to export")

    status, body = await _call(http, "GET", PATH + "/export")

    assert status == 200
    data = body["data"]
    [ticket] = data["tickets"]
    assert [
        (m["ticket_id"], m["sender"], m["author"], m["text"]) for m in data["ticket_messages"]
    ] == [(ticket["id"], "member", "alice", "The cup arrived broken")]
    assert [(e["ticket_id"], e["actor"]) for e in data["ticket_events"]] == [
        (ticket["id"], "alice")
    ]
    assert data["ticket_events"][0]["action"].startswith("filed")


async def test_delete_erases_the_complaints_texts_too(http, chat, core):
    await chat("alice").say("/complain The cup arrived broken")

    assert (await _call(http, "DELETE", PATH))[0] == 200

    async with core.services.db.reader() as session:
        [message] = (await session.execute(select(TicketMessage))).scalars()
        [ticket] = (await session.execute(select(Ticket))).scalars()
    assert (message.text, message.author) == ("", f"#{ticket.member_id}")
    assert ticket.state == "open"
