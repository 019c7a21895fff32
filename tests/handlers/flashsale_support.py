"""Arranging flash sales for tests: a community, members in it, a sale."""

from __future__ import annotations

from typing import Any

from bot.admin import flashsales as admin_sales
from bot.app import Core
from bot.channels.console import ConsoleChat
from storage import communities, members, roles

GROUP = -1001234567890


async def coffee(core: Core, *, telegram_chat_id: int | None = GROUP) -> int:
    now = core.services.clock.now()
    async with core.services.db.transaction() as session:
        found, _ = await communities.upsert(
            session,
            "coffee",
            {"names": {"en": "Coffee lovers", "zh_CN": "咖啡爱好者", "zh_TW": "咖啡愛好者"}}
            | ({"telegram_chat_id": telegram_chat_id} if telegram_chat_id else {}),
            now,
        )
        return found.id


async def member_id(core: Core, channel: str, name: str) -> int:
    found, _ = await members.get_or_create(
        core.services.db, channel, name, core.services.clock.now()
    )
    return found.id


async def join(core: Core, community_id: int, channel: str, name: str) -> int:
    mid = await member_id(core, channel, name)
    async with core.services.db.transaction() as session:
        await communities.join(session, community_id, mid, channel, core.services.clock.now())
    return mid


async def join_chat(core: Core, community_id: int, who: ConsoleChat) -> int:
    return await join(core, community_id, who.channel, who.name)


async def moderator(core: Core, community_id: int, channel: str, name: str) -> int:
    mid = await member_id(core, channel, name)
    async with core.services.db.transaction() as session:
        await roles.grant(session, mid, roles.MODERATOR, community_id, core.services.clock.now())
    return mid


async def sale(core: Core, **given: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "community": "coffee",
        "title": "Geisha beans",
        "price": "99.50",
        "stock": 3,
        "per_member_limit": 1,
        "duration_minutes": 30,
    }
    data.update(given)
    return await admin_sales.create_sale(core.services, data)
