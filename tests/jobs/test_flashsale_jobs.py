"""Flash sales start and end on the every-minute hook, with an injected clock: the group
announcement, its counter, WeChat members told, the moderator's summary once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.admin import flashsales as admin_sales
from bot.core.errors import DomainError
from bot.core.i18n import Translator
from handlers import HOOKS, flashsale_engine
from handlers.flashsale_engine import claim_sale
from handlers.flashsales import hook
from storage import members
from tests.handlers.flashsale_support import GROUP, coffee, join, member_id
from tests.jobs.conftest import Call

ANNOUNCEMENT = (
    "⚡ Flash sale in Coffee lovers: Geisha beans\n"
    "Price 99.50 · {left} of 2 left · limit 1 per member\n"
)


async def claim(core, who: int, code: str) -> str:
    async with core.services.db.reader() as session:
        me = await members.get(session, who)
    assert me is not None
    reply = await claim_sale(core.services, me, code, Translator("en"))
    return reply.text


async def arrange(core, **given):
    community = await coffee(core)
    mod = await member_id(core, "telegram", "900")
    tg = await join(core, community, "telegram", "111")
    wx = await join(core, community, "wechat", "openid-1")
    start = core.services.clock.now() + timedelta(minutes=10)
    data = {
        "community": "coffee",
        "title": "Geisha beans",
        "price": "99.50",
        "stock": 2,
        "starts_at": start.isoformat(),
        "duration_minutes": 30,
    } | given
    posted = await admin_sales.create_sale(core.services, data, created_by=mod)
    return posted, tg, wx, start


def test_the_hook_is_attached_to_the_flashsales_job():
    assert ("flashsales", hook) in HOOKS


async def test_goes_live_on_time_sells_out_and_summarises_once(core, env, telegram, wechat):
    posted, tg, wx, start = await arrange(core)
    assert await hook(core.services) == 0
    assert posted["state"] == "scheduled"

    core.services.clock.set(start)  # type: ignore[attr-defined]
    assert await hook(core.services) == 1
    assert await hook(core.services) == 0
    await env.sender.drain()

    assert telegram.calls[0].op == "post" and telegram.calls[0].chat_id == str(GROUP)
    assert telegram.calls[0].text.startswith(ANNOUNCEMENT.format(left=2))
    assert f"send “claim {posted['code']}”" in telegram.calls[0].text
    assert wechat.calls == [
        Call(
            "send",
            "openid-1",
            "⚡ Flash sale in Coffee lovers: Geisha beans for 99.50, 2 in stock, until "
            f"2026-03-10 10:40. Send “抢 {posted['code']}” to claim.",
        )
    ]

    await claim(core, tg, posted["code"])
    await claim(core, wx, posted["code"])
    await env.sender.drain()
    assert "edit" not in [c.op for c in telegram.calls]  # the count waits for its window's end
    assert await hook(core.services) == 0
    core.services.clock.advance(seconds=5)  # type: ignore[attr-defined]
    await env.sender.drain()

    edits = [c for c in telegram.calls if c.op == "edit"]
    assert len(edits) == 1  # the claims' count and the final edit coalesced into one
    assert edits[0].text == ANNOUNCEMENT.format(left=0) + "This flash sale has ended."
    summaries = [c for c in telegram.calls if c.op == "send"]
    assert summaries == [
        Call(
            "send",
            "900",
            f"Flash sale Geisha beans ({posted['code']}) has ended: 2 of 2 claimed by 2 members.\n"
            "Sold out in 0 minutes.\nWeChat members out of reach: 0.",
        )
    ]
    assert (await admin_sales.get_sale(core.services, posted["code"]))["state"] == "ended"


async def test_ends_at_its_time_with_one_summary(core, env, telegram):
    posted, tg, _wx, start = await arrange(core)
    core.services.clock.set(start)  # type: ignore[attr-defined]
    await hook(core.services)
    await env.sender.drain()
    await claim(core, tg, posted["code"])

    core.services.clock.set(start + timedelta(minutes=30))  # type: ignore[attr-defined]
    assert await hook(core.services) == 1
    assert await hook(core.services) == 0
    await env.sender.drain()

    sent = [c for c in telegram.calls if c.op == "send"]
    assert [c.text for c in sent] == [
        f"Flash sale Geisha beans ({posted['code']}) has ended: 1 of 2 claimed by 1 members.\n"
        "WeChat members out of reach: 0."
    ]
    edits = [c.text for c in telegram.calls if c.op == "edit"]
    assert edits == [ANNOUNCEMENT.format(left=1) + "This flash sale has ended."]


async def test_a_cancelled_sale_says_so_in_the_group(core, env, telegram):
    posted, _tg, _wx, start = await arrange(core)
    core.services.clock.set(start)  # type: ignore[attr-defined]
    await hook(core.services)
    await env.sender.drain()

    await admin_sales.cancel_sale(core.services, posted["code"])
    await env.sender.drain()

    edits = [c.text for c in telegram.calls if c.op == "edit"]
    assert edits == [ANNOUNCEMENT.format(left=2) + "This flash sale has ended."]
    assert await hook(core.services) == 0  # no summary for a cancelled sale


async def test_each_won_unit_reaches_the_win_hooks_once(core, monkeypatch):
    posted, tg, _wx, start = await arrange(core)
    core.services.clock.set(start)  # type: ignore[attr-defined]
    seen: list[tuple[int, int]] = []

    async def badge(session, services, member_id: int, sale_id: int) -> None:
        seen.append((member_id, sale_id))

    monkeypatch.setattr(flashsale_engine, "WIN_HOOKS", [badge])
    await claim(core, tg, posted["code"])
    with pytest.raises(DomainError):
        await claim(core, tg, posted["code"])

    assert [member for member, _ in seen] == [tg]


async def test_counter_edits_wait_for_their_window_and_carry_the_latest_count(core, env, telegram):
    community = await coffee(core)
    crowd = [await join(core, community, "telegram", str(500 + i)) for i in range(12)]
    posted = await admin_sales.create_sale(
        core.services,
        {"community": "coffee", "title": "Geisha beans", "price": "99.50", "stock": 20,
         "duration_minutes": 30},
    )  # fmt: skip
    await env.sender.drain()

    for who in crowd:  # one claim a second for 12 seconds, the sender running all along
        await claim(core, who, posted["code"])
        core.services.clock.advance(seconds=1)  # type: ignore[attr-defined]
        await env.sender.drain()
    core.services.clock.advance(seconds=5)  # type: ignore[attr-defined]
    await env.sender.drain()

    edits = [c.text.split("\n")[1] for c in telegram.calls if c.op == "edit"]
    assert len(edits) <= 12 // 5 + 1  # at most one edit per 5-second window
    assert edits[-1] == "Price 99.50 · 8 of 20 left · limit 1 per member"
