"""Welcome and birthday gift vouchers: given once by the deadlines hook, told via the outbox."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.app import Core
from bot.settings import GiftRules
from handlers import HOOKS
from handlers.gifts import give_gifts
from storage import rewards
from storage.models import OutboxPush, Voucher


@pytest.fixture
async def gift_rules(core: Core) -> None:
    now = core.services.clock.now()
    async with core.services.db.transaction() as session:
        await rewards.upsert(session, "hello", {"names": {"en": "Free coffee"}, "cost": 1}, now)
        await rewards.upsert(
            session, "cake", {"names": {"en": "Cake"}, "cost": 1, "stock": 1, "valid_days": 7}, now
        )
    rules = core.services.rules
    gifts = GiftRules(welcome={"bronze": "hello"}, birthday={"bronze": "cake"})
    core.services.rules = rules.model_copy(update={"gifts": gifts})


async def outbox(core: Core) -> list[tuple[str, str]]:
    async with core.services.db.reader() as session:
        rows = await session.execute(select(OutboxPush).order_by(OutboxPush.id))
        return [(p.kind, p.payload["text"]) for p in rows.scalars()]


async def codes(core: Core) -> list[tuple[int, int, str]]:
    async with core.services.db.reader() as session:
        rows = await session.execute(select(Voucher).order_by(Voucher.id))
        return [(v.member_id, v.cost, v.redemption_key) for v in rows.scalars()]


async def test_welcome_gift_once_per_new_member(core, chat, probe, gift_rules):
    assert ("deadlines", give_gifts) in HOOKS
    alice = chat("alice")
    await alice.say("help")
    member = await probe.member(alice)

    assert await give_gifts(core.services) == 1
    assert await give_gifts(core.services) == 0

    assert await codes(core) == [(member.id, 0, f"gift:welcome:{member.id}")]
    [(kind, text)] = await outbox(core)
    assert kind == "gift"
    assert text.startswith("Welcome! A gift for you: Free coffee. Voucher code: ")
    assert text.endswith("(valid until 2026-04-09).")
    assert await probe.balance(alice) == 0


async def test_birthday_gift_once_a_year_while_stock_lasts(core, chat, probe, gift_rules, clock):
    alice, bob = chat("alice"), chat("bob")
    for who in (alice, bob):
        await who.say("/birthday 03-12")
        await who.say("yes")
    clock.advance(days=2)  # 03-12: past the welcome window (24 hours)

    assert await give_gifts(core.services) == 1  # one cake left for two birthdays
    assert await give_gifts(core.services) == 0

    cakes = [key for _, _, key in await codes(core) if key.startswith("gift:birthday")]
    assert len(cakes) == 1
    async with core.services.db.reader() as session:
        assert (await rewards.by_slug(session, "cake")).stock == 0


async def test_a_gift_voucher_cancelled_gives_back_no_points(core, chat, probe, gift_rules, http):
    from tests.http.conftest import AUTH

    alice = chat("alice")
    await alice.say("help")
    await give_gifts(core.services)
    async with core.services.db.reader() as session:
        code = (await session.execute(select(Voucher.code))).scalar_one()

    async with http.post(f"/api/vouchers/{code}/cancel", headers=AUTH) as resp:
        assert resp.status == 200
        assert (await resp.json())["state"] == "cancelled"
    assert await probe.balance(alice) == 0
