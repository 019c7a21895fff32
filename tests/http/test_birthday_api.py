"""Operators correct a member's birthday: PUT /api/members/{channel}/{id}/birthday (item 10)."""

from __future__ import annotations

import logging

import pytest

from tests.http.conftest import AUTH

PATH = "/api/members/console/alice/birthday"


async def _alice_with_birthday(chat, said: str = "05-20") -> None:
    alice = chat("alice")
    await alice.say(f"/birthday {said}")
    reply = await alice.say("yes")
    assert reply is not None and reply.text.startswith("Birthday saved")


async def test_an_operator_corrects_a_birthday_with_an_audit_line(http, chat, caplog):
    await _alice_with_birthday(chat)
    caplog.set_level(logging.INFO, logger="memberbot.audit")

    async with http.put(PATH, headers=AUTH, json={"birthday": "06-21", "by": "jane"}) as resp:
        answer = (resp.status, await resp.json())
    async with http.get("/api/members/console/alice", headers=AUTH) as resp:
        member = await resp.json()
    shown = await chat("alice").say("/birthday")

    assert answer == (200, {"birthday": "06-21", "previous": "05-20"})
    assert member["birthday"] == "06-21"
    assert shown is not None and shown.text == "Your birthday is 06-21."
    [line] = [r.getMessage() for r in caplog.records if r.name == "memberbot.audit"]
    assert line == (
        f"birthday corrected member={member['id']} account=console:alice "
        "from=05-20 to=06-21 by='jane'"
    )


async def test_null_clears_it_so_the_member_can_set_it_again(http, chat):
    await _alice_with_birthday(chat)

    async with http.put(PATH, headers=AUTH, json={"birthday": None, "by": "jane"}) as resp:
        answer = (resp.status, await resp.json())
    await chat("alice").say("/birthday 2000-07-04")
    again = await chat("alice").say("是")

    assert answer == (200, {"birthday": None, "previous": "05-20"})
    assert again is not None and again.text.startswith("Birthday saved: 07-04.")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"birthday": "02-30", "by": "jane"}, "birthday"),
        ({"birthday": 520, "by": "jane"}, "birthday"),
        ({"birthday": "05-20", "by": ""}, "by"),
        ({"birthday": "05-20", "by": "x" * 65}, "by"),
    ],
)
async def test_bad_values_are_422_naming_the_field(http, chat, body, field):
    await _alice_with_birthday(chat)

    async with http.put(PATH, headers=AUTH, json=body) as resp:
        status, answer = resp.status, await resp.json()

    assert (status, answer.get("field")) == (422, field)


async def test_unknown_member_is_404_and_no_token_401(http):
    async with http.put(PATH, headers=AUTH, json={"birthday": "05-20"}) as resp:
        unknown = (resp.status, await resp.json())
    async with http.put(PATH, json={"birthday": "05-20"}) as resp:
        no_token = resp.status

    assert unknown == (404, {"error": "unknown member"})
    assert no_token == 401
