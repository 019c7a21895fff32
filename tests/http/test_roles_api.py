"""The operator API over roles: grant, list, revoke admin, staff and community moderators."""

from __future__ import annotations

import re
from typing import Any

import pytest

from storage import communities, members, roles
from tests.conftest import ADMIN_TOKEN
from tests.http.conftest import AUTH


async def call(http, method: str, path: str, body: Any = None, **headers: str):
    """(status, JSON) of one request, with the bearer token unless headers say otherwise."""
    async with http.request(method, path, json=body, headers=headers or AUTH) as resp:
        return resp.status, await resp.json()


async def member_id(core, channel: str, external_id: str) -> int:
    async with core.services.db.reader() as session:
        found = await members.find_by_identity(session, channel, external_id)
    assert found is not None
    return found.id


@pytest.fixture
async def alice(core, chat, http) -> int:
    """Alice has written to the bot from Telegram; a coffee community exists."""
    await chat("1001", channel="telegram").say("help")
    status, _ = await call(http, "PUT", "/api/communities/coffee", {"names": {"en": "Coffee"}})
    assert status == 201
    return await member_id(core, "telegram", "1001")


def held(who: int, role: str, community: str | None = None) -> dict[str, Any]:
    """A role as the API shows it, of Alice's Telegram account."""
    identities = [{"channel": "telegram", "external_id": "1001"}]
    return {"member_id": who, "identities": identities, "role": role, "community": community}


ADMIN = {"channel": "telegram", "external_id": "1001", "role": "admin"}
MODERATOR = {**ADMIN, "role": "moderator", "community": "coffee"}


@pytest.mark.parametrize("role", ["admin", "staff"])
async def test_granting_a_role_everywhere_is_201_then_200_when_held(core, http, alice, role):
    first = await call(http, "POST", "/api/roles", {**ADMIN, "role": role})
    again = await call(http, "POST", "/api/roles", {**ADMIN, "role": role, "community": None})

    assert first == (201, held(alice, role))
    assert again == (200, held(alice, role))
    async with core.services.db.reader() as session:
        assert [(r.role, r.community_id) for r in await roles.of_member(session, alice)] == [
            (role, roles.EVERYWHERE)
        ]


async def test_granting_a_moderator_of_a_community_is_201_and_checked_by_the_core(
    core, http, alice
):
    await call(http, "PUT", "/api/communities/tea", {"names": {"en": "Tea"}})

    answer = await call(http, "POST", "/api/roles", MODERATOR)

    assert answer == (201, held(alice, "moderator", "coffee"))
    async with core.services.db.reader() as session:
        coffee = await communities.by_slug(session, "coffee")
        tea = await communities.by_slug(session, "tea")
        assert coffee is not None and tea is not None
        assert await roles.has(session, alice, "moderator", coffee.id)
        assert not await roles.has(session, alice, "moderator", tea.id)
        assert not await roles.has(session, alice, "staff", coffee.id)


async def test_list_shows_every_grant_with_the_members_accounts_and_community(http, alice):
    await call(http, "PUT", "/api/communities/tea", {"names": {"en": "Tea"}})
    await call(http, "POST", "/api/roles", MODERATOR)
    await call(http, "POST", "/api/roles", {**MODERATOR, "community": "tea"})
    await call(http, "POST", "/api/roles", {**ADMIN, "role": "staff"})

    answer = await call(http, "GET", "/api/roles")

    assert answer == (
        200,
        [
            held(alice, "moderator", "coffee"),
            held(alice, "moderator", "tea"),
            held(alice, "staff"),
        ],
    )


async def test_list_names_every_account_of_a_linked_member(core, http, chat, alice):
    reply = await chat("1001", channel="telegram").say("link")
    assert reply is not None
    code = re.search(r"\b(\d{6})\b", reply.text)
    assert code is not None
    reply = await chat("o-alice", channel="wechat").say(f"link {code.group(1)}")
    assert reply is not None and reply.text.startswith("Linked!")
    await call(http, "POST", "/api/roles", ADMIN)
    survivor = await member_id(core, "wechat", "o-alice")

    status, listed = await call(http, "GET", "/api/roles")

    assert status == 200
    assert [(r["member_id"], r["role"]) for r in listed] == [(survivor, "admin")]
    assert sorted((i["channel"], i["external_id"]) for i in listed[0]["identities"]) == [
        ("telegram", "1001"),
        ("wechat", "o-alice"),
    ]


async def test_list_is_empty_when_nobody_has_a_role(http):
    assert await call(http, "GET", "/api/roles") == (200, [])


async def test_revoking_a_held_role_is_200_then_404(http, alice):
    await call(http, "POST", "/api/roles", MODERATOR)
    await call(http, "POST", "/api/roles", ADMIN)

    first = await call(http, "DELETE", "/api/roles", MODERATOR)
    again = await call(http, "DELETE", "/api/roles", MODERATOR)

    assert first == (200, held(alice, "moderator", "coffee"))
    assert again == (404, {"error": "role not held"})
    assert await call(http, "GET", "/api/roles") == (200, [held(alice, "admin")])


async def test_revoking_a_moderator_of_another_community_is_404(http, alice):
    await call(http, "PUT", "/api/communities/tea", {"names": {"en": "Tea"}})
    await call(http, "POST", "/api/roles", MODERATOR)

    answer = await call(http, "DELETE", "/api/roles", {**MODERATOR, "community": "tea"})

    assert answer == (404, {"error": "role not held"})
    assert await call(http, "GET", "/api/roles") == (200, [held(alice, "moderator", "coffee")])


async def test_a_moderator_of_an_archived_community_keeps_it_and_can_be_revoked(http, alice):
    await call(http, "POST", "/api/roles", MODERATOR)
    await call(http, "DELETE", "/api/communities/coffee")

    assert await call(http, "GET", "/api/roles") == (200, [held(alice, "moderator", "coffee")])
    assert await call(http, "DELETE", "/api/roles", MODERATOR) == (
        200,
        held(alice, "moderator", "coffee"),
    )


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_unknown_member_is_404_and_no_member_is_created(http, admin, alice, method):
    answer = await call(http, method, "/api/roles", {**ADMIN, "external_id": "2002"})

    assert answer == (404, {"error": "unknown member"})
    assert (await admin.member("telegram", "2002"))[0] == 404


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("slug", ["tea", "Tea!", "x"])
async def test_unknown_community_is_404(http, alice, method, slug):
    answer = await call(http, method, "/api/roles", {**MODERATOR, "community": slug})

    assert answer == (404, {"error": f"unknown community {slug}"})
    assert await call(http, "GET", "/api/roles") == (200, [])


INVALID = [
    ({"role": "moderator"}, "community", "community is required for a moderator"),
    (
        {"role": "moderator", "community": None},
        "community",
        "community is required for a moderator",
    ),
    ({"role": "moderator", "community": ""}, "community", "community is required for a moderator"),
    (
        {"role": "admin", "community": "coffee"},
        "community",
        "community must be left out for admin (it is everywhere)",
    ),
    (
        {"role": "staff", "community": "coffee"},
        "community",
        "community must be left out for staff (it is everywhere)",
    ),
    ({"role": "moderator", "community": 7}, "community", "community must be a community's slug"),
    ({"role": "owner"}, "role", "role must be one of admin, staff, moderator"),
    ({"role": None}, "role", "role must be one of admin, staff, moderator"),
    ({"role": "Admin"}, "role", "role must be one of admin, staff, moderator"),
    ({"channel": "qq"}, "channel", "channel must be one of wechat, telegram, console"),
    ({"channel": None}, "channel", "channel must be one of wechat, telegram, console"),
    (
        {"external_id": ""},
        "external_id",
        "external_id must be text of 1 to 128 characters, no control characters",
    ),
    (
        {"external_id": 1001},
        "external_id",
        "external_id must be text of 1 to 128 characters, no control characters",
    ),
    (
        {"external_id": "1" * 129},
        "external_id",
        "external_id must be text of 1 to 128 characters, no control characters",
    ),
    (
        {"external_id": "10\u0000"},
        "external_id",
        "external_id must be text of 1 to 128 characters, no control characters",
    ),
    (
        {"external_id": "\ud800"},
        "external_id",
        "external_id must be text of 1 to 128 characters, no control characters",
    ),
    ({"member_id": 1}, "member_id", "member_id is not a role field"),
]


@pytest.mark.parametrize(("change", "field", "message"), INVALID)
async def test_invalid_field_of_a_grant_is_422_naming_it_and_grants_nothing(
    http, alice, change, field, message
):
    answer = await call(http, "POST", "/api/roles", {**ADMIN, **change})

    assert answer == (422, {"error": message, "field": field})
    assert await call(http, "GET", "/api/roles") == (200, [])


# Revokes are checked by the same code as grants: one bad value of each field is enough.
ONE_PER_FIELD = list({field: (change, field, msg) for change, field, msg in INVALID}.values())


@pytest.mark.parametrize(("change", "field", "message"), ONE_PER_FIELD)
async def test_invalid_field_of_a_revoke_is_422_naming_it_and_revokes_nothing(
    http, alice, change, field, message
):
    await call(http, "POST", "/api/roles", ADMIN)

    answer = await call(http, "DELETE", "/api/roles", {**ADMIN, **change})

    assert answer == (422, {"error": message, "field": field})
    assert await call(http, "GET", "/api/roles") == (200, [held(alice, "admin")])


@pytest.mark.parametrize("missing", ["channel", "external_id", "role"])
async def test_a_missing_field_is_422(http, alice, missing):
    body = {key: value for key, value in ADMIN.items() if key != missing}

    status, answer = await call(http, "POST", "/api/roles", body)

    assert (status, answer["field"]) == (422, missing)


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize(
    ("body", "error"),
    [(b"{", "malformed JSON"), (b"", "malformed JSON"), (b"[]", "expected a JSON object")],
)
async def test_malformed_body_is_400(http, alice, method, body, error):
    headers = {**AUTH, "Content-Type": "application/json"}
    async with http.request(method, "/api/roles", data=body, headers=headers) as resp:
        assert (resp.status, await resp.json()) == (400, {"error": error})


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", ADMIN_TOKEN])
async def test_missing_or_wrong_token_is_401_and_changes_nothing(
    http, alice, method, authorization
):
    await call(http, "POST", "/api/roles", MODERATOR)
    headers = {} if authorization is None else {"Authorization": authorization}

    async with http.request(method, "/api/roles", json=ADMIN, headers=headers) as resp:
        answer = (resp.status, await resp.json())

    assert answer == (401, {"error": "missing or wrong bearer token"})
    assert await call(http, "GET", "/api/roles") == (200, [held(alice, "moderator", "coffee")])
