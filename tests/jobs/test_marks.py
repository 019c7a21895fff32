"""Group commit of the outbox's "sent" marks (bot/jobs/marks.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.core.messages import Reply
from bot.jobs.marks import SentMarks
from storage import outbox
from storage.models import OutboxPush


@pytest.mark.parametrize(("group", "commits"), [(200, 1), (7, 5)])
async def test_marks_arriving_together_share_a_commit_and_a_lost_lease_says_so(
    core, clock, monkeypatch, group, commits
):
    monkeypatch.setattr("bot.jobs.marks.GROUP", group)
    db, now = core.services.db, clock.now()
    async with db.transaction() as session:
        for i in range(30):
            target = outbox.Target("telegram", str(500 + i))
            await outbox.enqueue(
                session, f"m:{i}", target, "tier-change", Reply("hi").to_json(), now
            )
    async with db.transaction() as session:
        pushes = await outbox.claim(session, now, lease=timedelta(minutes=2), limit=30)
    assert len(pushes) == 30
    async with db.transaction() as session:  # another sender took the first one over
        await session.execute(
            update(OutboxPush).where(OutboxPush.id == pushes[0].id).values(attempts=2)
        )

    statements = 0
    written = outbox.mark_sent_group

    async def counted(*args):
        nonlocal statements
        statements += 1
        return await written(*args)

    monkeypatch.setattr(outbox, "mark_sent_group", counted)
    marks = SentMarks(db)
    kept = await asyncio.gather(*(marks.mark(p, now, str(p.id)) for p in pushes))
    await marks.flushed()

    assert kept == [False] + [True] * 29
    # All asked before the first commit began: one commit for 30, or one per group.
    assert statements == commits
    async with db.reader() as session:
        rows = (await session.execute(select(OutboxPush.state, OutboxPush.message_id))).all()
    assert sorted(rows) == sorted(
        [(outbox.PENDING, None)] + [(outbox.SENT, str(p.id)) for p in pushes[1:]]
    )
