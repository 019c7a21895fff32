"""The operator API over the points mall and the till's voucher calls."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import Core
from storage import ledger, members
from tests.http.conftest import AUTH

MUG = {"names": {"en": "Coffee mug", "zh_CN": "咖啡杯"}, "cost": 100, "stock": 3}
MUG_JSON = {
    "slug": "mug",
    "kind": "voucher",
    "names": {"en": "Coffee mug", "zh_CN": "咖啡杯"},
    "cost": 100,
    "stock": 3,
    "redeemed": 0,
    "per_member_limit": None,
    "min_tier": "bronze",
    "valid_days": 30,
    "active": True,
}


async def call(http, method: str, path: str, body: Any = None, **headers: str):
    async with http.request(method, path, json=body, headers=headers or AUTH) as resp:
        return resp.status, await resp.json()


async def test_put_creates_201_then_changes_200_and_lists(http):
    assert await call(http, "PUT", "/api/rewards/mug", MUG) == (201, MUG_JSON)
    changed = await call(http, "PUT", "/api/rewards/mug", {"stock": None, "min_tier": "gold"})
    assert changed == (200, MUG_JSON | {"stock": None, "min_tier": "gold"})
    assert await call(http, "GET", "/api/rewards") == (200, [changed[1]])
    assert await call(http, "GET", "/api/rewards/mug") == changed
    retired = await call(http, "DELETE", "/api/rewards/mug")
    assert retired == (200, changed[1] | {"active": False})


async def test_a_lottery_carries_its_prizes(http):
    prizes = [
        {"slug": "big", "names": {"en": "Big"}, "weight": 1, "stock": 2},
        {"slug": "small", "names": {"en": "Small"}, "weight": 9, "stock": None},
    ]
    body = {"names": {"en": "Luck"}, "cost": 20, "kind": "lottery", "prizes": prizes}
    status, found = await call(http, "PUT", "/api/rewards/luck", body)
    assert status == 201
    assert found["prizes"] == [
        {"slug": "small", "names": {"en": "Small"}, "weight": 9, "stock": None, "won": 0},
        {"slug": "big", "names": {"en": "Big"}, "weight": 1, "stock": 2, "won": 0},
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (MUG | {"cost": 0}, "cost"),
        (MUG | {"cost": -5}, "cost"),
        (MUG | {"stock": -1}, "stock"),
        (MUG | {"min_tier": "platinum"}, "min_tier"),
        (MUG | {"valid_days": 0}, "valid_days"),
        (MUG | {"per_member_limit": 0}, "per_member_limit"),
        (MUG | {"colour": "red"}, "colour"),
        ({"cost": 10}, "names"),
        ({"names": {"en": "X"}}, "cost"),
        ({"names": {"en": "L"}, "cost": 5, "kind": "lottery"}, "prizes"),
        (
            {
                "names": {"en": "L"},
                "cost": 5,
                "kind": "lottery",
                "prizes": [{"slug": "aa", "names": {"en": "A"}, "weight": 0}],
            },
            "prizes.weight",
        ),
        (MUG | {"prizes": [{"slug": "aa", "names": {"en": "A"}, "weight": 1}]}, "prizes"),
    ],
)
async def test_bad_fields_are_422_naming_the_field(http, body, field):
    status, answer = await call(http, "PUT", "/api/rewards/mug", body)
    assert status == 422
    assert answer["field"] == field
    assert (await call(http, "GET", "/api/rewards/mug"))[0] == 404


async def _voucher(core: Core, http, points: int = 150) -> tuple[str, int]:
    """Alice (console) redeems the mug; returns the code and her member id."""
    from storage import vouchers

    await call(http, "PUT", "/api/rewards/mug", MUG)
    now = core.services.clock.now()
    member, _ = await members.get_or_create(core.services.db, "console", "alice", now)
    async with core.services.db.transaction() as session:
        await ledger.earn(session, member.id, points, "gift", "gift", now, expiry_days=365)
        done = await vouchers.redeem(session, member.id, "mug", "k", now, tier_ok=lambda *_: True)
    return done.voucher.code, member.id


async def test_till_checks_uses_once_then_409_with_the_state(core, http):
    code, member_id = await _voucher(core, http)
    expires = "2026-04-09T02:00:00+00:00"
    voucher = {
        "code": code,
        "reward": "mug",
        "member_id": member_id,
        "state": "issued",
        "expires_at": expires,
    }

    status, found = await call(http, "GET", f"/api/vouchers/{code}")
    assert status == 200 and found.items() >= voucher.items()
    status, used = await call(http, "POST", f"/api/vouchers/{code.lower()}/use")
    assert status == 200 and used["state"] == "used"
    status, again = await call(http, "POST", f"/api/vouchers/{code}/use")
    assert (status, again["state"]) == (409, "used")
    status, cancel = await call(http, "POST", f"/api/vouchers/{code}/cancel")
    assert (status, cancel["state"]) == (409, "used")
    assert (await call(http, "GET", "/api/vouchers/NOPE42"))[0] == 404
    assert (await call(http, "POST", "/api/vouchers/NOPE42/use"))[0] == 404


async def test_cancel_gives_points_and_stock_back(core, http):
    code, _ = await _voucher(core, http)

    status, cancelled = await call(http, "POST", f"/api/vouchers/{code}/cancel")

    assert (status, cancelled["state"]) == (200, "cancelled")
    member = await call(http, "GET", "/api/members/console/alice")
    assert member[1]["points"] == 150
    assert (await call(http, "GET", "/api/rewards/mug"))[1]["stock"] == 3
    status, again = await call(http, "POST", f"/api/vouchers/{code}/use")
    assert (status, again["state"]) == (409, "cancelled")
    status, listed = await call(http, "GET", "/api/members/console/alice/vouchers")
    assert status == 200 and [(v["code"], v["state"]) for v in listed] == [(code, "cancelled")]


async def test_expired_voucher_is_409_expired(core, http, clock):
    code, _ = await _voucher(core, http)
    clock.advance(days=30)
    status, answer = await call(http, "POST", f"/api/vouchers/{code}/use")
    assert (status, answer["state"]) == (409, "expired")


async def test_routes_need_the_token(http):
    assert (await call(http, "GET", "/api/rewards", Authorization="Bearer wrong"))[0] == 401
    assert (await call(http, "POST", "/api/vouchers/X/use", Authorization="Bearer no"))[0] == 401
