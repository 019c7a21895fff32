"""The outbox table on both backends: written with its cause, once per key, claimed by one
sender at a time, and every state change a push can go through."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta

import pytest
from sqlalchemy import select

from storage import outbox, outbox_reads
from storage.models import OutboxPush
from storage.outbox import Target
from tests.conftest import START
from tests.storage.support import count

LEASE = timedelta(seconds=60)
ALICE = Target("telegram", "111", None)


class Boom(Exception):
    pass


async def enqueue(db, key, target=ALICE, *, at=START, **options):
    async with db.transaction() as session:
        return await outbox.enqueue(
            session, key, target, "tier-change", {"text": key}, at, **options
        )


async def claim(db, at=START, limit=10, channels=None):
    async with db.transaction() as session:
        return await outbox.claim(session, at, lease=LEASE, limit=limit, channels=channels)


async def row(db, push_id) -> OutboxPush:
    async with db.sessions() as session:
        found = await session.get(OutboxPush, push_id)
        assert found is not None
        return found


async def settle(db, fn, *args, **kwargs):
    async with db.transaction() as session:
        return await fn(session, *args, **kwargs)


# --- enqueue -------------------------------------------------------------------------------


async def test_a_push_rolled_back_with_its_cause_leaves_no_row(db, new_member):
    member_id = await new_member()
    with pytest.raises(Boom):
        async with db.transaction() as session:
            await outbox.enqueue(
                session,
                "k1",
                Target("telegram", "111", member_id),
                "tier-change",
                {"text": "hi"},
                START,
            )
            raise Boom
    assert await count(db, OutboxPush) == 0


async def test_a_committed_push_is_pending_and_due_at_once(db):
    push_id = await enqueue(db, "k1")
    pushed = await row(db, push_id)
    assert (pushed.state, pushed.attempts, pushed.mode, pushed.payload) == (
        "pending",
        0,
        "send",
        {"text": "k1"},
    )
    assert pushed.next_attempt_at == START
    assert pushed.leased_until is None


async def test_twenty_concurrent_enqueues_with_one_key_make_one_row(db):
    ids = await asyncio.gather(*(enqueue(db, "same-key") for _ in range(20)))
    assert len([i for i in ids if i is not None]) == 1
    assert await count(db, OutboxPush) == 1


async def test_not_before_delays_the_push(db):
    await enqueue(db, "k1", not_before=START + timedelta(hours=2))
    assert await claim(db, START + timedelta(hours=1)) == []
    [push] = await claim(db, START + timedelta(hours=2))
    assert push.attempts == 1


# --- claim ---------------------------------------------------------------------------------


async def test_claim_takes_due_pushes_oldest_first_and_counts_an_attempt(db):
    first = await enqueue(db, "a", at=START - timedelta(minutes=2))
    second = await enqueue(db, "b", at=START - timedelta(minutes=1))
    await enqueue(db, "later", not_before=START + timedelta(minutes=1))
    claimed = await claim(db, limit=10)
    assert [(p.id, p.attempts) for p in claimed] == [(first, 1), (second, 1)]
    assert (await row(db, first)).leased_until == START + LEASE


async def test_a_claimed_push_is_not_claimed_again_until_its_lease_ends(db):
    await enqueue(db, "a")
    assert len(await claim(db)) == 1
    assert await claim(db, START + LEASE - timedelta(seconds=1)) == []
    [again] = await claim(db, START + LEASE)
    assert again.attempts == 2


async def test_claim_takes_only_the_channels_asked_for(db):
    await enqueue(db, "tg")
    wechat = await enqueue(db, "wx", Target("wechat", "openid-1"))
    [push] = await claim(db, channels=frozenset({"wechat"}))
    assert push.id == wechat


async def test_concurrent_claimers_never_get_the_same_push(db):
    for i in range(60):
        await enqueue(db, f"k{i}")
    batches = await asyncio.gather(*(claim(db, limit=7) for _ in range(12)))
    ids = [p.id for batch in batches for p in batch]
    assert len(ids) == len(set(ids)) == 60


# --- the sender's one-statement claim (claim_due) -------------------------------------------

BOTH = frozenset({"telegram", "wechat"})


async def claim_due(db, at=START, limit=10, channels=BOTH, **options):
    return await outbox.claim_due(db, at, lease=LEASE, limit=limit, channels=channels, **options)


async def test_claim_due_gives_the_push_claim_gives(db, new_member):
    """Every field as the ORM's claim reads it: JSON payload, flags, an aware hold_until."""
    member_id = await new_member()
    target = Target("wechat", "openid-1", member_id)
    async with db.transaction() as session:
        pushed = await outbox.enqueue(
            session,
            "a",
            target,
            "campaign",
            {"text": "hi", "b": [["x", "y"]]},
            START,
            marketing=True,
            quiet=True,
        )
    [first] = await claim(db)
    until = START + timedelta(days=7)
    await settle(db, outbox.hold, first, START, until, "outside-window")
    await settle(db, outbox.release_held, "wechat", "openid-1", START)
    [fast] = await claim_due(db)
    await settle(db, outbox.retry, fast, START, START, "given back", counts=False)
    [slow] = await claim(db)

    assert fast == slow
    assert (fast.id, fast.member_id, fast.payload, fast.marketing, fast.attempts) == (
        pushed,
        member_id,
        {"text": "hi", "b": [["x", "y"]]},
        True,
        1,
    )
    assert (fast.quiet, fast.hold_until, fast.hold_until.tzinfo) == (False, until, UTC)


async def test_claim_due_takes_due_pushes_oldest_first_and_leases_them(db):
    first = await enqueue(db, "a", at=START - timedelta(minutes=2))
    second = await enqueue(db, "b", at=START - timedelta(minutes=1))
    await enqueue(db, "later", not_before=START + timedelta(minutes=1))
    claimed = await claim_due(db, limit=10)
    assert [(p.id, p.attempts) for p in claimed] == [(first, 1), (second, 1)]
    assert (await row(db, first)).leased_until == START + LEASE
    assert await claim_due(db, START + LEASE - timedelta(seconds=1)) == []
    assert [p.attempts for p in await claim_due(db, START + LEASE, limit=1)] == [2]


async def test_claim_due_takes_only_the_channels_asked_for_and_skips_what_it_is_told(db):
    await enqueue(db, "tg")
    wechat = await enqueue(db, "wx", Target("wechat", "openid-1"))
    other = await enqueue(db, "wx2", Target("wechat", "openid-2"))
    [push] = await claim_due(db, channels=frozenset({"wechat"}), skip=[wechat])
    assert push.id == other
    assert await claim_due(db, channels=frozenset()) == []


async def test_claim_due_can_fail_expired_holds_first(db):
    await enqueue(db, "a", Target("wechat", "openid-1"))
    [push] = await claim_due(db)
    until = START + timedelta(days=7)
    await settle(db, outbox.hold, push, START, until, "outside-window")
    assert await claim_due(db, until, expire_holds=True) == []
    pushed = await row(db, push.id)
    assert (pushed.state, pushed.last_error) == ("failed", "hold-expired")


async def test_concurrent_claim_dues_never_get_the_same_push(db):
    for i in range(60):
        await enqueue(db, f"k{i}")
    batches = await asyncio.gather(*(claim_due(db, limit=7) for _ in range(12)))
    ids = [p.id for batch in batches for p in batch]
    assert len(ids) == len(set(ids)) == 60


# --- outcomes ------------------------------------------------------------------------------


async def test_marking_sent_keeps_the_message_id(db):
    await enqueue(db, "a")
    [push] = await claim(db)
    assert await settle(db, outbox.mark_sent, push, START, "m-42")
    pushed = await row(db, push.id)
    assert (pushed.state, pushed.message_id, pushed.sent_at, pushed.leased_until) == (
        "sent",
        "m-42",
        START,
        None,
    )


async def test_many_marks_in_one_statement_keep_each_message_id_and_skip_lost_leases(db):
    for key in ("a", "b", "c"):
        await enqueue(db, key, Target("telegram", key))
    first = await claim(db)
    [taken_over] = await claim(db, START + LEASE, limit=1)  # "a": another sender's now
    a, b, c = first
    sent = [(a, "m-a"), (b, "m-b"), (c, None)]

    assert await outbox.mark_sent_group(db, sent, START) == {b.id, c.id}

    states = [((r := await row(db, p.id)).state, r.message_id, r.attempts) for p in first]
    assert states == [("pending", None, 2), ("sent", "m-b", 1), ("sent", None, 1)]
    assert taken_over.id == a.id


async def test_a_group_mark_leaves_a_push_settled_otherwise_alone(db):
    """Two senders never both mark: a push failed (or held) meanwhile is not marked sent."""
    for key in ("a", "b"):
        await enqueue(db, key, Target("telegram", key))
    a, b = await claim(db)
    assert await settle(db, outbox.fail, a, START, "blocked")
    assert await outbox.mark_sent_group(db, [(a, "m-a"), (b, "m-b")], START) == {b.id}
    assert await outbox.mark_sent_group(db, [(b, "m-again")], START) == set()
    states = [((r := await row(db, p.id)).state, r.message_id) for p in (a, b)]
    assert states == [("failed", None), ("sent", "m-b")]


async def test_a_mark_with_a_lost_lease_changes_nothing(db):
    await enqueue(db, "a")
    [stale] = await claim(db)
    [fresh] = await claim(db, START + LEASE)
    assert not await settle(db, outbox.fail, stale, START + LEASE, "error")
    assert await settle(db, outbox.mark_sent, fresh, START + LEASE, "m-1")
    assert (await row(db, fresh.id)).state == "sent"


async def test_retry_makes_it_due_again_at_the_given_time_with_the_reason(db):
    await enqueue(db, "a")
    [push] = await claim(db)
    at = START + timedelta(seconds=30)
    assert await settle(db, outbox.retry, push, START, at, "error")
    pushed = await row(db, push.id)
    assert (pushed.state, pushed.attempts, pushed.last_error) == ("pending", 1, "error")
    assert await claim(db, at - timedelta(seconds=1)) == []
    [again] = await claim(db, at)
    assert again.attempts == 2


async def test_a_retry_that_does_not_count_gives_the_attempt_back(db):
    await enqueue(db, "a")
    [push] = await claim(db)
    await settle(
        db, outbox.retry, push, START, START + timedelta(seconds=3), "rate-limited", counts=False
    )
    assert (await row(db, push.id)).attempts == 0


async def test_failing_keeps_the_reason_and_the_push_is_never_claimed_again(db):
    await enqueue(db, "a")
    [push] = await claim(db)
    await settle(db, outbox.fail, push, START, "blocked")
    pushed = await row(db, push.id)
    assert (pushed.state, pushed.last_error) == ("failed", "blocked")
    assert await claim(db, START + timedelta(days=30)) == []


async def test_a_held_push_waits_until_the_person_writes_again(db):
    await enqueue(db, "a", Target("wechat", "openid-1"))
    await enqueue(db, "other", Target("wechat", "openid-2"))
    [push, other] = await claim(db)
    until = START + timedelta(days=7)
    await settle(db, outbox.hold, push, START, until, "outside-window")
    await settle(db, outbox.hold, other, START, until, "outside-window")
    pushed = await row(db, push.id)
    assert (pushed.state, pushed.attempts, pushed.hold_until) == ("held", 0, until)
    assert await claim(db, START + timedelta(days=1)) == []

    later = START + timedelta(days=2)
    assert await settle(db, outbox.release_held, "wechat", "openid-1", later) == 1
    [released] = await claim(db, later)
    assert (released.id, released.quiet, released.hold_until) == (push.id, False, until)
    assert (await row(db, other.id)).state == "held"


async def test_a_held_push_fails_when_nobody_wrote_before_its_limit(db):
    await enqueue(db, "a", Target("wechat", "openid-1"))
    [push] = await claim(db)
    until = START + timedelta(days=7)
    await settle(db, outbox.hold, push, START, until, "outside-window")
    assert await settle(db, outbox.expire_holds, until - timedelta(seconds=1)) == 0
    assert await settle(db, outbox.expire_holds, until) == 1
    pushed = await row(db, push.id)
    assert (pushed.state, pushed.last_error) == ("failed", "hold-expired")


async def test_holding_again_keeps_the_first_deadline(db):
    await enqueue(db, "a", Target("wechat", "openid-1"))
    [push] = await claim(db)
    first = START + timedelta(days=7)
    await settle(db, outbox.hold, push, START, first, "outside-window")
    later = START + timedelta(days=3)
    await settle(db, outbox.release_held, "wechat", "openid-1", later)
    [again] = await claim(db, later)
    await settle(db, outbox.hold, again, later, later + timedelta(days=7), "quota")
    assert (await row(db, push.id)).hold_until == first


# --- edits ---------------------------------------------------------------------------------


async def test_an_edit_of_a_push_not_sent_yet_changes_the_push_itself(db):
    post = await enqueue(db, "post", Target("telegram", "-100", None, "post"))
    async with db.transaction() as session:
        carrier = await outbox.enqueue_edit(session, "edit-1", post, {"text": "9 left"}, START)
    assert carrier == post
    assert (await row(db, post)).payload == {"text": "9 left"}
    assert await count(db, OutboxPush) == 1


async def test_an_edit_of_a_sent_push_is_a_new_row_and_a_newer_edit_replaces_it(db):
    post = await enqueue(db, "post", Target("telegram", "-100", None, "post"))
    [claimed] = await claim(db)
    await settle(db, outbox.mark_sent, claimed, START, "m-7")
    async with db.transaction() as session:
        first = await outbox.enqueue_edit(session, "edit-1", post, {"text": "9 left"}, START)
        second = await outbox.enqueue_edit(session, "edit-2", post, {"text": "8 left"}, START)
    assert first is not None and first == second
    edit = await row(db, first)
    assert (edit.mode, edit.edit_of, edit.chat_id, edit.payload) == (
        "edit",
        post,
        "-100",
        {"text": "8 left"},
    )
    assert await count(db, OutboxPush) == 2


async def test_an_edit_in_flight_is_not_changed_a_new_edit_follows_it(db):
    post = await enqueue(db, "post", Target("telegram", "-100", None, "post"))
    [claimed] = await claim(db)
    await settle(db, outbox.mark_sent, claimed, START, "m-7")
    async with db.transaction() as session:
        first = await outbox.enqueue_edit(session, "edit-1", post, {"text": "9 left"}, START)
    await claim(db)  # the first edit is being sent
    async with db.transaction() as session:
        second = await outbox.enqueue_edit(session, "edit-2", post, {"text": "8 left"}, START)
    assert second not in (None, first)
    assert (await row(db, first)).payload == {"text": "9 left"}


async def test_an_edit_of_an_unknown_push_queues_nothing(db):
    async with db.transaction() as session:
        assert await outbox.enqueue_edit(session, "edit-1", 999, {"text": "x"}, START) is None


# --- what operators see --------------------------------------------------------------------


async def test_depth_counts_by_state_and_channel(db):
    await enqueue(db, "a")
    await enqueue(db, "b")
    await enqueue(db, "c", Target("wechat", "o"))
    [first, *_] = await claim(db, limit=1)
    await settle(db, outbox.fail, first, START, "blocked")
    async with db.reader() as session:
        assert await outbox_reads.depth(session) == {
            ("failed", "telegram"): 1,
            ("pending", "telegram"): 1,
            ("pending", "wechat"): 1,
        }


async def test_oldest_due_ignores_pushes_waiting_on_purpose(db):
    await enqueue(db, "later", not_before=START + timedelta(hours=8))
    async with db.reader() as session:
        assert await outbox_reads.oldest_due(session, START) is None
    await enqueue(db, "due", at=START - timedelta(minutes=5))
    async with db.reader() as session:
        assert await outbox_reads.oldest_due(session, START) == START - timedelta(minutes=5)


async def test_listing_shows_held_pushes_as_pending(db):
    held = await enqueue(db, "a", Target("wechat", "o"))
    sent = await enqueue(db, "b")
    claimed = {p.id: p for p in await claim(db)}
    await settle(db, outbox.hold, claimed[held], START, START + timedelta(days=1), "quota")
    await settle(db, outbox.mark_sent, claimed[sent], START, None)
    async with db.reader() as session:
        pending = await outbox_reads.listing(session, "pending")
        everything = await outbox_reads.listing(session)
    assert [(p.id, outbox.PUBLIC_STATE[p.state]) for p in pending] == [(held, "pending")]
    assert [p.id for p in everything] == [sent, held]


async def test_last_error_is_cut_to_its_column(db):
    await enqueue(db, "a")
    [push] = await claim(db)
    await settle(db, outbox.fail, push, START, "x" * 100)
    async with db.sessions() as session:
        error = (await session.execute(select(OutboxPush.last_error))).scalar_one()
    assert error == "x" * 64
