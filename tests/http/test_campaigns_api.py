"""/api/campaigns: preview, create (201 with results), list, read; refusals as JSON."""

from __future__ import annotations

from tests.http.conftest import AUTH


async def _call(http, method: str, path: str, payload=None, headers=AUTH):
    async with http.request(method, path, json=payload, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_preview_create_list_and_read(http, chat):
    for name in ("alice", "bob"):
        await chat(name).say("/checkin")
    await chat("bob").say("/mute")

    preview = await _call(http, "POST", "/api/campaigns", {"dry_run": True, "segment": {}})
    status, made = await _call(
        http,
        "POST",
        "/api/campaigns",
        {"name": "spring", "texts": {"en": "Spring sale!"}, "segment": {"channel": "console"}},
    )
    listed = await _call(http, "GET", "/api/campaigns")
    read = await _call(http, "GET", f"/api/campaigns/{made['id']}")

    assert preview == (200, {"segment": {}, "recipients": 2})
    assert status == 201
    assert {k: made[k] for k in ("name", "state", "recipients", "opted_out", "pending")} == {
        "name": "spring",
        "state": "sent",
        "recipients": 2,
        "opted_out": 1,
        "pending": 1,
    }
    assert (made["redeemed"], made["reward_voucher"]) == (0, None)
    assert listed == (200, [made])
    assert read == (200, made)


async def test_refusals(http):
    assert await _call(
        http, "POST", "/api/campaigns", {"texts": {"en": "x"}, "reward_points": "1"}
    ) == (
        422,
        {
            "error": "reward_points must be a whole number from 0 to 1000000",
            "field": "reward_points",
        },
    )
    assert (await _call(http, "GET", "/api/campaigns/999"))[0] == 404
    assert (await _call(http, "GET", "/api/campaigns/abc"))[0] == 404
    assert (await _call(http, "GET", "/api/campaigns?limit=0"))[0] == 422
    assert (await _call(http, "GET", "/api/campaigns", headers={}))[0] == 401


async def test_a_voucher_reward_per_recipient_by_slug(http, chat, core):
    from storage import rewards
    from tests.conftest import START

    async with core.services.db.transaction() as session:
        await rewards.upsert(session, "mug", {"names": {"en": "Mug"}, "cost": 50}, START)
    await chat("alice").say("/checkin")

    status, made = await _call(
        http, "POST", "/api/campaigns", {"texts": {"en": "Hi"}, "reward_voucher": "mug"}
    )
    refused = await _call(
        http, "POST", "/api/campaigns", {"texts": {"en": "Hi"}, "reward_voucher": "nope"}
    )

    assert status == 201
    assert (made["reward_voucher"], made["recipients"], made["redeemed"]) == ("mug", 1, 0)
    preview = await _call(
        http, "POST", "/api/campaigns", {"dry_run": True, "reward_voucher": "mug"}
    )
    assert preview == (
        200,
        {"segment": {}, "recipients": 1, "reward_voucher": "mug", "vouchers_left": None},
    )
    assert refused == (
        422,
        {
            "error": "reward_voucher must be an active voucher reward: nope",
            "field": "reward_voucher",
        },
    )
