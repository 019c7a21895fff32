"""An operator corrects a member's birthday (members set theirs once; mistakes happen).

Every correction leaves an audit line (logger `memberbot.audit`): who, whose, from what, to what.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot.admin import fields
from bot.admin.errors import Invalid
from bot.admin.members import find
from bot.core.context import Services
from handlers.profile import parse_birthday
from storage import members
from storage.db import once_more_if_needed
from storage.ledger import lock_member

audit = logging.getLogger("memberbot.audit")
audit.setLevel(logging.INFO)  # kept even where the CLI quiets everything else to warnings
BY_MAX = 64


def parse(data: Mapping[str, object]) -> tuple[str | None, str]:
    """`birthday`: MM-DD (or 2000-05-20, 5月20日), or null to clear; `by`: who corrects it."""
    raw = data.get("birthday")
    birthday = None
    if raw is not None:
        birthday = parse_birthday(raw) if isinstance(raw, str) else None
        if birthday is None:
            raise Invalid("birthday", "birthday must be a real day as MM-DD, e.g. 05-20")
    by = data.get("by", "operator")
    if not isinstance(by, str) or not 1 <= len(by.strip()) <= BY_MAX or not fields.plain_text(by):
        raise Invalid("by", f"by must be text of 1 to {BY_MAX} characters")
    return birthday, fields.one_line(by)


async def correct(
    services: Services, channel: str, external_id: str, data: Mapping[str, object]
) -> dict[str, Any]:
    """Set (or clear) the birthday whatever was set before; the previous value is returned."""
    birthday, by = parse(data)

    async def for_member() -> tuple[int, str | None]:
        # Inside the retry: if the accounts were linked meanwhile, the merged member is found.
        member = await find(services, channel, external_id)
        async with services.db.transaction() as session:
            held = await lock_member(session, member.id)
            previous = held.birthday
            await members.set_birthday(session, member.id, birthday)
        return member.id, previous

    member_id, previous = await once_more_if_needed(for_member)
    audit.info(
        "birthday corrected member=%s account=%s:%s from=%s to=%s by=%r",
        member_id,
        channel,
        external_id,
        previous or "-",
        birthday or "-",
        by,
    )
    return {"birthday": birthday, "previous": previous}
