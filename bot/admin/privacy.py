"""A member's data for operators: export it as JSON, erase the personal part of it."""

from __future__ import annotations

from typing import Any

from bot.admin.members import find
from bot.core.context import Services
from handlers.privacy import forget
from storage import privacy
from storage.db import once_more_if_needed


async def export_member(services: Services, channel: str, external_id: str) -> dict[str, Any]:
    """Everything kept about the member (and the accounts merged into them), table by table."""
    member = await find(services, channel, external_id)
    async with services.db.reader() as session:
        tables = await privacy.export(session, member.id)
    return {
        "member_id": member.id,
        "exported_at": services.clock.now().isoformat(),
        "data": tables,
    }


async def erase_member(services: Services, channel: str, external_id: str) -> dict[str, Any]:
    """DELETE /api/members/...: the member named by an account, erased; 404 afterwards."""

    async def run() -> tuple[int, list[int]]:
        member = await find(services, channel, external_id)
        return member.id, await forget(services, member.id)

    member_id, erased = await once_more_if_needed(run)
    return {"member_id": member_id, "erased": True, "members": erased}
