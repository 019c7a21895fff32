"""The operator API over communities: create, change, list, archive, and every refusal."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import ADMIN_TOKEN, PRIVACY_LINE
from tests.http.conftest import AUTH

COFFEE = {
    "names": {"en": "Coffee", "zh_CN": "咖啡"},
    "tag": "drinks",
    "min_tier": "silver",
    "telegram_chat_id": -100123,
    "wechat_qr": "https://example.com/qr/coffee.png",
    "description": "Beans, brews and tastings.",
}
COFFEE_JSON = {"slug": "coffee", **COFFEE, "active": True, "members": 0}


async def call(http, method: str, path: str, body: Any = None, **headers: str):
    """(status, JSON) of one request, with the bearer token unless headers say otherwise."""
    async with http.request(method, path, json=body, headers=headers or AUTH) as resp:
        return resp.status, await resp.json()


async def test_put_of_a_new_slug_creates_it_201_with_every_field(http):
    answer = await call(http, "PUT", "/api/communities/coffee", COFFEE)

    assert answer == (201, COFFEE_JSON)
    assert await call(http, "GET", "/api/communities/coffee") == (200, COFFEE_JSON)


async def test_put_with_only_names_creates_it_with_defaults(http):
    answer = await call(http, "PUT", "/api/communities/tea", {"names": {"en": "Tea"}})

    assert answer == (
        201,
        {
            "slug": "tea",
            "names": {"en": "Tea"},
            "tag": "",
            "min_tier": "bronze",
            "telegram_chat_id": None,
            "wechat_qr": None,
            "description": "",
            "active": True,
            "members": 0,
        },
    )


async def test_put_of_an_existing_slug_changes_only_the_given_fields_200(http):
    await call(http, "PUT", "/api/communities/coffee", COFFEE)

    answer = await call(
        http,
        "PUT",
        "/api/communities/coffee",
        {"min_tier": "gold", "wechat_qr": None, "names": {"zh_TW": "咖啡"}},
    )

    expected = {**COFFEE_JSON, "min_tier": "gold", "wechat_qr": None, "names": {"zh_TW": "咖啡"}}
    assert answer == (200, expected)


async def test_a_get_body_can_be_put_back_unchanged(http):
    await call(http, "PUT", "/api/communities/coffee", COFFEE)
    _, body = await call(http, "GET", "/api/communities/coffee")

    assert await call(http, "PUT", "/api/communities/coffee", body) == (200, COFFEE_JSON)


async def test_list_has_every_community_by_slug_with_its_joined_member_count(http, chat):
    await call(http, "PUT", "/api/communities/tea", {"names": {"en": "Tea"}})
    await call(http, "PUT", "/api/communities/coffee", {**COFFEE, "min_tier": "bronze"})
    for name in ("alice", "bob", "carol"):
        reply = await chat(name).say("join coffee")
        assert reply is not None and reply.text.startswith("You joined Coffee!")
    await chat("carol").say("leave coffee")

    status, listed = await call(http, "GET", "/api/communities")

    assert status == 200
    assert [(c["slug"], c["members"]) for c in listed] == [("coffee", 2), ("tea", 0)]
    assert listed[0] == {**COFFEE_JSON, "min_tier": "bronze", "members": 2}


async def test_list_is_empty_when_there_are_none(http):
    assert await call(http, "GET", "/api/communities") == (200, [])


async def test_delete_archives_it_keeping_its_members_and_hides_it_from_members(http, chat):
    await call(http, "PUT", "/api/communities/coffee", {**COFFEE, "min_tier": "bronze"})
    await chat("alice").say("join coffee")

    answer = await call(http, "DELETE", "/api/communities/coffee")

    archived = {**COFFEE_JSON, "min_tier": "bronze", "active": False, "members": 1}
    assert answer == (200, archived)
    assert await call(http, "GET", "/api/communities") == (200, [archived])
    reply = await chat("bob").say("communities")
    assert reply is not None and reply.text == "There are no communities yet." + PRIVACY_LINE
    assert (await call(http, "DELETE", "/api/communities/coffee")) == (200, archived)


async def test_put_active_true_brings_an_archived_community_back(http, chat):
    await call(http, "PUT", "/api/communities/coffee", {**COFFEE, "min_tier": "bronze"})
    await call(http, "DELETE", "/api/communities/coffee")

    status, body = await call(http, "PUT", "/api/communities/coffee", {"active": True})

    assert (status, body["active"]) == (200, True)
    reply = await chat("alice").say("join coffee")
    assert reply is not None and reply.text.startswith("You joined Coffee!")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("slug", ["nope", "Coffee", "x", "caf%C3%A9"])
async def test_get_or_delete_of_an_unknown_slug_is_404(http, method, slug):
    await call(http, "PUT", "/api/communities/coffee", COFFEE)

    status, body = await call(http, method, f"/api/communities/{slug}")

    assert status == 404
    assert body["error"].startswith("unknown community ")


SLUG_ERROR = {"error": "slug must be 2 to 32 characters of a-z, 0-9, - and _", "field": "slug"}


@pytest.mark.parametrize("slug", ["x", "a" * 33, "Coffee", "caf%C3%A9", "tea!", "tea%20time"])
async def test_put_with_a_bad_slug_is_422_and_creates_nothing(http, slug):
    answer = await call(http, "PUT", f"/api/communities/{slug}", COFFEE)

    assert answer == (422, SLUG_ERROR)
    assert await call(http, "GET", "/api/communities") == (200, [])


@pytest.mark.parametrize("slug", ["ab", "a" * 32, "coffee-lovers_2"])
async def test_put_accepts_slugs_of_2_to_32_allowed_characters(http, slug):
    status, body = await call(http, "PUT", f"/api/communities/{slug}", {"names": {"en": "X"}})

    assert (status, body["slug"]) == (201, slug)


NAMES = "names must be an object of language (zh_CN, zh_TW, en) to name"
TIERS = "min_tier must be one of bronze, silver, gold, diamond"
CHAT = "telegram_chat_id must be a negative whole number (a Telegram group id) or null"
QR = "wechat_qr must be an http or https URL of at most 512 characters, or null"
INVALID = [
    ({"names": []}, "names", NAMES),
    ({"names": {}}, "names", NAMES),
    ({"names": "Coffee"}, "names", NAMES),
    ({"names": {"fr": "Café"}}, "names", NAMES),
    ({"names": {"en": ""}}, "names", "names.en must be text of 1 to 64 characters"),
    ({"names": {"en": " \x00\x07 "}}, "names", "names.en must be text of 1 to 64 characters"),
    ({"names": {"en": "x" * 65}}, "names", "names.en must be text of 1 to 64 characters"),
    ({"names": {"en": 5}}, "names", "names.en must be text of 1 to 64 characters"),
    ({"names": {"en": None}}, "names", "names.en must be text of 1 to 64 characters"),
    ({"tag": "x" * 33}, "tag", "tag must be text of at most 32 characters"),
    ({"tag": None}, "tag", "tag must be text of at most 32 characters"),
    ({"min_tier": "platinum"}, "min_tier", TIERS),
    ({"min_tier": "Gold"}, "min_tier", TIERS),
    ({"min_tier": None}, "min_tier", TIERS),
    ({"telegram_chat_id": True}, "telegram_chat_id", CHAT),
    ({"telegram_chat_id": False}, "telegram_chat_id", CHAT),
    ({"telegram_chat_id": "-100123"}, "telegram_chat_id", CHAT),
    ({"telegram_chat_id": -100123.0}, "telegram_chat_id", CHAT),
    ({"telegram_chat_id": 100123}, "telegram_chat_id", CHAT),
    ({"telegram_chat_id": 0}, "telegram_chat_id", CHAT),
    ({"telegram_chat_id": -(2**63) - 1}, "telegram_chat_id", CHAT),
    ({"wechat_qr": "ftp://example.com/qr.png"}, "wechat_qr", QR),
    ({"wechat_qr": "javascript:alert(1)"}, "wechat_qr", QR),
    ({"wechat_qr": "not a url"}, "wechat_qr", QR),
    ({"wechat_qr": "https://"}, "wechat_qr", QR),
    ({"wechat_qr": "https://exa mple.com/qr"}, "wechat_qr", QR),
    ({"wechat_qr": "https://example.com/\x00qr"}, "wechat_qr", QR),
    ({"wechat_qr": "https://[::1/qr"}, "wechat_qr", QR),
    ({"wechat_qr": "https://example.com/" + "q" * 493}, "wechat_qr", QR),
    ({"wechat_qr": ""}, "wechat_qr", QR),
    ({"wechat_qr": 5}, "wechat_qr", QR),
    (
        {"description": "x" * 501},
        "description",
        "description must be text of at most 500 characters",
    ),
    ({"description": None}, "description", "description must be text of at most 500 characters"),
    ({"active": "yes"}, "active", "active must be true or false"),
    ({"active": 1}, "active", "active must be true or false"),
    ({"active": None}, "active", "active must be true or false"),
    ({"nmes": {"en": "Coffee"}}, "nmes", "nmes is not a community field"),
    ({"slug": "tea"}, "slug", "slug in the body must be the one in the path"),
]


@pytest.mark.parametrize(("change", "field", "message"), INVALID)
async def test_invalid_field_on_create_is_422_naming_it_and_creates_nothing(
    http, change, field, message
):
    answer = await call(http, "PUT", "/api/communities/coffee", {**COFFEE, **change})

    assert answer == (422, {"error": message, "field": field})
    assert await call(http, "GET", "/api/communities") == (200, [])


# Updates are checked by the same code as creations: one bad value of each field is enough.
ONE_PER_FIELD = list({field: (change, field, msg) for change, field, msg in INVALID}.values())


@pytest.mark.parametrize(("change", "field", "message"), ONE_PER_FIELD)
async def test_invalid_field_on_update_is_422_naming_it_and_changes_nothing(
    http, change, field, message
):
    await call(http, "PUT", "/api/communities/coffee", COFFEE)

    answer = await call(http, "PUT", "/api/communities/coffee", change)

    assert answer == (422, {"error": message, "field": field})
    assert await call(http, "GET", "/api/communities/coffee") == (200, COFFEE_JSON)


async def test_create_without_names_is_422(http):
    body = {k: v for k, v in COFFEE.items() if k != "names"}

    answer = await call(http, "PUT", "/api/communities/coffee", body)

    assert answer == (422, {"error": "names is required to create a community", "field": "names"})


async def test_limits_are_inclusive(http):
    edge = {
        "names": {"en": "n" * 64},
        "tag": "t" * 32,
        "description": "d" * 500,
        "wechat_qr": "https://example.com/" + "q" * 492,
        "telegram_chat_id": -(2**63),
    }

    status, body = await call(http, "PUT", "/api/communities/edge", edge)

    assert status == 201
    assert {k: body[k] for k in edge} == edge


async def test_control_characters_are_stripped_and_names_kept_on_one_line(http):
    messy = {
        "names": {"en": "  Cof\x00fee\u202e\nLovers\t"},
        "tag": "dri\x1bnks",
        "description": "Line one\x07\nLine two",
    }

    status, body = await call(http, "PUT", "/api/communities/coffee", messy)

    assert status == 201
    assert (body["names"], body["tag"], body["description"]) == (
        {"en": "Coffee Lovers"},
        "drinks",
        "Line one\nLine two",
    )


async def test_a_telegram_group_of_another_community_is_409(http):
    await call(http, "PUT", "/api/communities/coffee", COFFEE)
    tea = {"names": {"en": "Tea"}, "telegram_chat_id": -100123}

    answer = await call(http, "PUT", "/api/communities/tea", tea)

    assert answer == (409, {"error": "telegram_chat_id -100123 belongs to community coffee"})
    assert (await call(http, "GET", "/api/communities/tea"))[0] == 404
    await call(http, "PUT", "/api/communities/tea", {"names": {"en": "Tea"}})
    assert (await call(http, "PUT", "/api/communities/tea", tea))[0] == 409


async def test_putting_a_community_its_own_telegram_group_again_is_fine(http):
    await call(http, "PUT", "/api/communities/coffee", COFFEE)

    answer = await call(http, "PUT", "/api/communities/coffee", {"telegram_chat_id": -100123})

    assert answer == (200, COFFEE_JSON)


async def test_a_telegram_group_freed_by_one_community_can_go_to_another(http):
    await call(http, "PUT", "/api/communities/coffee", COFFEE)
    await call(http, "PUT", "/api/communities/coffee", {"telegram_chat_id": None})

    status, body = await call(
        http, "PUT", "/api/communities/tea", {"names": {"en": "Tea"}, "telegram_chat_id": -100123}
    )

    assert (status, body["telegram_chat_id"]) == (201, -100123)


async def test_concurrent_creates_of_one_slug_make_one_community_once(http):
    answers = await asyncio.gather(
        *(call(http, "PUT", "/api/communities/coffee", COFFEE) for _ in range(8))
    )

    assert sorted(status for status, _ in answers) == [200] * 7 + [201]
    assert all(body == COFFEE_JSON for _, body in answers)
    assert await call(http, "GET", "/api/communities") == (200, [COFFEE_JSON])


async def test_concurrent_claims_of_one_telegram_group_give_it_to_one_community(http):
    slugs = [f"club-{i}" for i in range(6)]
    answers = await asyncio.gather(
        *(
            call(
                http,
                "PUT",
                f"/api/communities/{slug}",
                {"names": {"en": slug}, "telegram_chat_id": -100777},
            )
            for slug in slugs
        )
    )

    assert sorted(status for status, _ in answers) == [201] + [409] * 5
    _, listed = await call(http, "GET", "/api/communities")
    assert [c["telegram_chat_id"] for c in listed] == [-100777]


@pytest.mark.parametrize(
    "body", [b"", b"{", b"not json", b"\xff\xfe", b'{"names": {"en": "x"}'], ids=repr
)
async def test_malformed_json_is_400(http, body):
    headers = {**AUTH, "Content-Type": "application/json"}
    async with http.put("/api/communities/coffee", data=body, headers=headers) as resp:
        assert (resp.status, await resp.json()) == (400, {"error": "malformed JSON"})


@pytest.mark.parametrize("body", [b"[]", b'"coffee"', b"null", b"3"])
async def test_a_json_body_that_is_not_an_object_is_400(http, body):
    headers = {**AUTH, "Content-Type": "application/json"}
    async with http.put("/api/communities/coffee", data=body, headers=headers) as resp:
        assert (resp.status, await resp.json()) == (400, {"error": "expected a JSON object"})


ROUTES = [
    ("GET", "/api/communities"),
    ("GET", "/api/communities/coffee"),
    ("PUT", "/api/communities/coffee"),
    ("DELETE", "/api/communities/coffee"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", ADMIN_TOKEN])
async def test_missing_or_wrong_token_is_401_and_changes_nothing(http, method, path, authorization):
    await call(http, "PUT", "/api/communities/coffee", COFFEE)
    headers = {} if authorization is None else {"Authorization": authorization}

    async with http.request(method, path, json={"tag": "changed"}, headers=headers) as resp:
        answer = (resp.status, await resp.json())

    assert answer == (401, {"error": "missing or wrong bearer token"})
    assert await call(http, "GET", "/api/communities/coffee") == (200, COFFEE_JSON)
