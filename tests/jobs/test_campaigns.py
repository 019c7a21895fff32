"""Campaigns: segments pick exactly their members; muted members get nothing; sending is
idempotent however often (or however concurrently) it runs; scheduled ones go at their time."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot.admin import campaigns as admin
from bot.admin.errors import Invalid
from handlers import HOOKS
from handlers.campaigns import hook, send
from storage import communities, members, nudges
from storage.models import CampaignRecipient, Checkin, LedgerEntry, Member, Order
from tests.conftest import START
from tests.jobs.conftest import pushes


@pytest.fixture
async def crowd(core, clock, new_member):
    """Named members with known tiers, apps, communities, birthdays, activity and spend."""
    services = core.services
    clock.set(START - timedelta(days=40))
    ids = {
        "old_quiet": await new_member("wechat", "w-old-quiet"),
        "old_active": await new_member("telegram", "t-old-active"),
    }
    clock.set(START)
    ids |= {
        "gold_coffee": await new_member("telegram", "t-gold"),
        "silver_spender": await new_member("console", "c-silver"),
        "bronze_may": await new_member("wechat", "w-may"),
        "big_spender": await new_member("telegram", "t-big"),
    }
    async with services.db.transaction() as session:
        await members.set_tier(session, ids["gold_coffee"], "gold")
        await members.set_tier(session, ids["silver_spender"], "silver")
        await members.set_birthday_once(session, ids["bronze_may"], "05-20")
        await members.set_birthday_once(session, ids["gold_coffee"], "06-01")
        coffee, _ = await communities.upsert(session, "coffee", {"names": {"en": "C"}}, START)
        await communities.join(session, coffee.id, ids["gold_coffee"], "test", START)
        session.add(
            Checkin(
                member_id=ids["old_active"],
                day=date(2026, 3, 1),
                streak=1,
                points=5,
                created_at=START,
            )
        )
        for who, amount in (("silver_spender", "100"), ("big_spender", "900"), ("old_active", "5")):
            session.add(
                Order(
                    order_id=f"o-{who}",
                    member_id=ids[who],
                    amount=Decimal(amount),
                    currency="CNY",
                    status="paid",
                    created_at=START - timedelta(days=60),
                )
            )
    # Neither a member merged into another nor an erased one is anybody's recipient.
    merged = await new_member("telegram", "t-merged")
    async with services.db.transaction() as session:
        await members.merge(session, ids["gold_coffee"], merged)
    await new_member("console", "c-erased")
    await admin_erase(core, "console", "c-erased")
    return ids


async def admin_erase(core, channel: str, external_id: str) -> None:
    from bot.admin.privacy import erase_member

    await erase_member(core.services, channel, external_id)


SEGMENTS = [
    ({}, {"old_quiet", "old_active", "gold_coffee", "silver_spender", "bronze_may", "big_spender"}),
    ({"tier": "gold"}, {"gold_coffee"}),
    ({"tier": ["gold", "silver"]}, {"gold_coffee", "silver_spender"}),
    ({"community": "coffee"}, {"gold_coffee"}),
    ({"channel": "wechat"}, {"old_quiet", "bronze_may"}),
    ({"channel": "telegram", "tier": "bronze"}, {"old_active", "big_spender"}),
    ({"dormant_days": 30}, {"old_quiet"}),
    ({"birthday_month": 5}, {"bronze_may"}),
    ({"top_spend_percent": 33}, {"big_spender"}),  # 3 spenders: 33 % rounds up to one
    ({"top_spend_percent": 50}, {"big_spender", "silver_spender"}),
    ({"top_spend_percent": 50, "tier": "silver"}, {"silver_spender"}),
    ({"birthday_month": 12}, set()),
]


@pytest.mark.parametrize(("segment", "expected"), SEGMENTS)
async def test_segments_pick_exactly_their_members(core, crowd, segment, expected):
    services = core.services

    preview, created = await admin.create(services, {"segment": segment, "dry_run": True})
    answer, created = await admin.create(services, {"segment": segment, "texts": {"en": "Hi"}})

    assert not preview.get("id") and preview["recipients"] == len(expected)
    assert created and answer["recipients"] == len(expected)
    async with services.db.reader() as session:
        rows = await session.execute(
            select(CampaignRecipient.member_id).where(CampaignRecipient.campaign_id == answer["id"])
        )
        reached = set(rows.scalars())
    assert reached == {crowd[name] for name in expected}
    assert {p.member_id for p in await pushes(core)} == reached


async def test_muted_members_get_nothing_and_count_as_opted_out(core, env, telegram, crowd):
    services = core.services
    async with services.db.transaction() as session:
        await nudges.mute(session, crowd["gold_coffee"], START)

    answer, _ = await admin.create(
        services, {"segment": {"channel": "telegram"}, "texts": {"en": "Sale!"}}
    )
    await env.sender.drain()
    shown = await admin.show(services, answer["id"])

    assert {c.chat_id for c in telegram.calls} == {"t-old-active", "t-big"}
    assert [c.text for c in telegram.calls] == ["Sale!", "Sale!"]
    assert (shown["recipients"], shown["sent"], shown["opted_out"], shown["failed"]) == (3, 2, 1, 0)
    assert shown["state"] == "sent"


async def test_a_member_who_mutes_before_delivery_is_skipped_too(core, env, telegram, crowd):
    services = core.services
    answer, _ = await admin.create(
        services, {"segment": {"channel": "telegram"}, "texts": {"en": "Sale!"}}
    )
    async with services.db.transaction() as session:
        await nudges.mute(session, crowd["big_spender"], START)

    await env.sender.drain()
    shown = await admin.show(services, answer["id"])

    # The gold member's newest account is the one merged into them.
    assert {c.chat_id for c in telegram.calls} == {"t-old-active", "t-merged"}
    assert (shown["recipients"], shown["sent"], shown["opted_out"]) == (3, 2, 1)


async def test_text_in_the_members_language_and_gift_credited_once(core, crowd):
    services = core.services
    async with services.db.transaction() as session:
        await members.set_locale(session, crowd["gold_coffee"], "zh_CN")
    data = {
        "segment": {"tier": "gold"},
        "texts": {"en": "Hello", "zh_CN": "你好"},
        "reward_points": 30,
    }

    answer, _ = await admin.create(services, data)
    await send(services, answer["id"])  # a re-run: nothing more

    [push] = await pushes(core)
    assert push.payload["text"] == "你好\n礼物：+30 积分。余额：30。"
    async with services.db.reader() as session:
        gold = await session.get(Member, crowd["gold_coffee"])
        entries = (await session.execute(select(LedgerEntry.amount, LedgerEntry.reason))).all()
    assert gold is not None and gold.points == 30
    assert entries == [(30, "campaign")]


async def test_sending_again_or_concurrently_queues_each_member_once(core, crowd):
    services = core.services
    async with services.db.transaction() as session:
        from storage import campaigns

        made = await campaigns.create(
            session, "x", campaigns.Segment(), {"en": "Hi"}, 5, START, START
        )
    runs = await asyncio.gather(*(send(services, made.id) for _ in range(4)))
    again = await send(services, made.id)

    assert sum(runs) == 6 and again == 0
    assert len(await pushes(core)) == 6
    async with services.db.reader() as session:
        gifts = (await session.execute(select(func.count()).select_from(LedgerEntry))).scalar_one()
    assert gifts == 6


async def test_a_scheduled_campaign_goes_at_its_time_once(core, clock, crowd):
    services = core.services
    at = (START + timedelta(hours=2)).isoformat()
    answer, _ = await admin.create(
        services, {"segment": {"tier": "gold"}, "texts": {"en": "Later"}, "send_at": at}
    )
    assert (answer["state"], answer["recipients"]) == ("scheduled", 0)

    assert await hook(services) == 0
    clock.advance(hours=2)
    assert await hook(services) == 1
    assert await hook(services) == 0
    assert (await admin.show(services, answer["id"]))["state"] == "sent"
    assert ("deadlines", hook) in HOOKS


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"texts": {}}, "texts"),
        ({"texts": {"fr": "x"}}, "texts"),
        ({"texts": {"en": " "}}, "texts.en"),
        ({"texts": {"en": "x"}, "segment": {"tier": "platinum"}}, "segment.tier"),
        ({"texts": {"en": "x"}, "segment": {"community": "nope"}}, "segment.community"),
        ({"texts": {"en": "x"}, "segment": {"channel": "sms"}}, "segment.channel"),
        ({"texts": {"en": "x"}, "segment": {"birthday_month": 13}}, "segment.birthday_month"),
        ({"texts": {"en": "x"}, "segment": {"top_spend_percent": 0}}, "segment.top_spend_percent"),
        ({"texts": {"en": "x"}, "segment": {"colour": "red"}}, "colour"),
        ({"texts": {"en": "x"}, "send_at": "tomorrow"}, "send_at"),
        ({"texts": {"en": "x"}, "send_at": "2026-03-11T10:00:00"}, "send_at"),
        ({"texts": {"en": "x"}, "reward_points": -1}, "reward_points"),
        ({"texts": {"en": "x"}, "extra": 1}, "extra"),
    ],
)
async def test_bad_fields_are_refused_by_name(core, data, field):
    with pytest.raises(Invalid) as refused:
        await admin.create(core.services, data)
    assert refused.value.field == field


async def test_a_campaign_queued_at_night_waits_for_the_morning(core, clock, env, telegram, crowd):
    services = core.services
    clock.set(START.replace(hour=23))
    answer, _ = await admin.create(services, {"segment": {"tier": "gold"}, "texts": {"en": "Hi"}})

    await env.sender.drain()
    assert telegram.calls == []
    clock.set(START.replace(hour=8) + timedelta(days=1))
    await env.sender.drain()

    assert [c.text for c in telegram.calls] == ["Hi"]
    assert (await admin.show(services, answer["id"]))["sent"] == 1


async def _mug(services, stock: int | None) -> None:
    from storage import rewards

    async with services.db.transaction() as session:
        values = {"names": {"en": "Mug", "zh_CN": "马克杯"}, "cost": 80, "stock": stock}
        await rewards.upsert(session, "mug", values, START)


async def _vouchers(services) -> list[tuple[int, str, int]]:
    """(member, redemption key, cost) of every voucher, by member."""
    from storage.models import Voucher

    async with services.db.reader() as session:
        rows = await session.execute(
            select(Voucher.member_id, Voucher.redemption_key, Voucher.cost).order_by(
                Voucher.member_id
            )
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def test_a_voucher_per_recipient_once_and_redeemed_counts_the_used(core, crowd):
    from storage import vouchers
    from storage.models import Reward

    services = core.services
    await _mug(services, 10)
    async with services.db.transaction() as session:
        await nudges.mute(session, crowd["big_spender"], START)
        await members.set_locale(session, crowd["old_active"], "zh_CN")
    data = {"segment": {"channel": "telegram"}, "texts": {"en": "Hi", "zh_CN": "你好"}}

    answer, _ = await admin.create(services, data | {"reward_voucher": "mug"})
    await send(services, answer["id"])  # a re-run gives nothing more

    given = await _vouchers(services)
    # The muted member gets neither the message nor a voucher; a voucher is a gift: cost 0.
    assert given == [
        (crowd["old_active"], f"campaign:{answer['id']}:{crowd['old_active']}", 0),
        (crowd["gold_coffee"], f"campaign:{answer['id']}:{crowd['gold_coffee']}", 0),
    ]
    texts = {p.member_id: p.payload["text"] for p in await pushes(core)}
    async with services.db.reader() as session:
        held = {v.member_id: v for v in (await session.execute(select(vouchers.Voucher))).scalars()}
        mug = (await session.execute(select(Reward))).scalar_one()
    code = held[crowd["old_active"]].code
    assert (
        texts[crowd["old_active"]] == f"你好\n礼物：马克杯。券码：{code}（有效期至 2026-04-09）。"
    )
    assert texts[crowd["gold_coffee"]].startswith("Hi\nGift: Mug. Voucher code: ")
    assert (mug.stock, mug.redeemed) == (8, 2)

    async with services.db.transaction() as session:
        await vouchers.use(session, code, START)
    shown = await admin.show(services, answer["id"])
    assert (shown["reward_voucher"], shown["recipients"], shown["opted_out"]) == ("mug", 3, 1)
    assert shown["redeemed"] == 1
    assert (await admin.listing(services, 5))[0]["redeemed"] == 1


async def test_concurrent_runs_give_one_voucher_each_and_never_beyond_stock(core, crowd):
    from storage import campaigns, rewards

    services = core.services
    await _mug(services, 4)
    async with services.db.transaction() as session:
        mug = await rewards.by_slug(session, "mug")
        assert mug is not None
        made = await campaigns.create(
            session, "x", campaigns.Segment(), {"en": "Hi"}, 0, START, START, reward_id=mug.id
        )

    runs = await asyncio.gather(*(send(services, made.id) for _ in range(4)))

    assert sum(runs) == 6  # everybody gets the message; only four the voucher (the stock)
    given = await _vouchers(services)
    assert len(given) == 4 and len({member for member, _, _ in given}) == 4
    texts = [p.payload["text"] for p in await pushes(core)]
    assert sum("Voucher code" in t for t in texts) == 4 and texts.count("Hi") == 2


@pytest.mark.parametrize(("kind", "active"), [("lottery", True), ("voucher", False)])
async def test_only_an_active_voucher_reward_can_be_the_gift(core, kind, active):
    from storage import rewards

    async with core.services.db.transaction() as session:
        values = {"names": {"en": "X"}, "cost": 5, "kind": kind, "active": active}
        await rewards.upsert(session, "prize", values, START)
    for slug in ("prize", "Bad slug!"):
        with pytest.raises(Invalid) as refused:
            await admin.create(core.services, {"texts": {"en": "x"}, "reward_voucher": slug})
        assert refused.value.field == "reward_voucher"
