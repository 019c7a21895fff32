"""Opening balances on both backends: one per member, however many imports run at once."""

from __future__ import annotations

import asyncio
import io

from bot.admin import transfer
from storage import ledger, members


async def test_concurrent_imports_of_one_file_credit_each_member_once(core):
    services = core.services
    text = "channel,external_id,points\ntelegram,1,100\ntelegram,2,50\n"

    reports = await asyncio.gather(
        *(transfer.import_members(services, io.StringIO(text)) for _ in range(4))
    )

    assert sum(r.imported for r in reports) == 2 and sum(r.already for r in reports) == 6
    async with services.db.reader() as session:
        for external, points in (("1", 100), ("2", 50)):
            found = await members.find_by_identity(session, "telegram", external)
            assert found is not None and found.points == points
            assert await ledger.ledger_sum(session, found.id) == points
