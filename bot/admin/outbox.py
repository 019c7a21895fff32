"""The outbox as operators see it: pushes waiting, sent and failed, newest first."""

from __future__ import annotations

from typing import Any

from bot.admin import fields
from bot.admin.errors import Invalid
from bot.core.context import Services
from storage import outbox, outbox_reads
from storage.models import OutboxPush

STATES = ("pending", "sent", "failed")
PAGE_MAX = 500


def push_json(push: OutboxPush) -> dict[str, Any]:
    """The SPEC's outbox item, plus where and when (a held push shows as pending)."""
    return {
        "id": push.id,
        "channel": push.channel,
        "kind": push.kind,
        "state": outbox.PUBLIC_STATE.get(push.state, push.state),
        "attempts": push.attempts,
        "error": push.last_error,
        "member_id": push.member_id,
        "created_at": push.created_at.isoformat(),
        "next_attempt_at": push.next_attempt_at.isoformat(),
    }


async def list_pushes(
    services: Services,
    state: str | None = None,
    limit: str | None = None,
    before: str | None = None,
) -> list[dict[str, Any]]:
    if state is not None and state not in STATES:
        raise Invalid("state", f"state must be one of {', '.join(STATES)}")
    size = 100 if limit is None else fields.query_number("limit", limit, 1, PAGE_MAX)
    older = None if before is None else fields.query_number("before", before, 1, 2**63 - 1)
    async with services.db.reader() as session:
        rows = await outbox_reads.listing(session, state, limit=size, before=older)
    return [push_json(row) for row in rows]
