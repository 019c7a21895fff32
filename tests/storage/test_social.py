"""Invites, community memberships and roles on both backends: each decided once under races."""

from __future__ import annotations

import asyncio
from datetime import date

from storage import communities, invites, roles
from storage.db import Database
from tests.conftest import START

DAY = date(2026, 3, 10)


async def test_an_invitee_is_attributed_once_however_many_race(db: Database, new_member):
    inviters = [await new_member() for _ in range(5)]
    invitee = await new_member()

    async def attempt(inviter: int) -> bool:
        async with db.transaction() as session:
            return await invites.attribute(session, inviter, invitee, "code", START)

    won = await asyncio.gather(*(attempt(inviters[i % 5]) for i in range(20)))

    assert won.count(True) == 1
    async with db.reader() as session:
        row = await invites.of_invitee(session, invitee)
    assert row is not None and row.status == invites.WAITING


async def test_a_waiting_invite_is_settled_once_and_counts_follow(db: Database, new_member):
    inviter, invitee = await new_member(), await new_member()
    async with db.transaction() as session:
        await invites.attribute(session, inviter, invitee, "telegram", START)

    async def settle() -> object:
        async with db.transaction() as session:
            return await invites.settle_first_checkin(session, invitee, DAY, 20, START)

    moved = await asyncio.gather(*(settle() for _ in range(10)))

    assert sum(m is not None for m in moved) == 1
    async with db.reader() as session:
        counts = await invites.counts(session, inviter)
        row = await invites.of_invitee(session, invitee)
    assert (counts.invited, counts.rewarded, counts.review) == (1, 1, 0)
    assert row is not None and (row.status, row.reward_day) == (invites.REWARDED, DAY)


async def test_a_held_reward_is_decided_once(db: Database, new_member):
    inviter, invitee = await new_member(), await new_member()
    async with db.transaction() as session:
        await invites.attribute(session, inviter, invitee, "code", START)
        held = await invites.settle_first_checkin(session, invitee, DAY, 0, START)
    assert held is not None and held.status == invites.REVIEW

    async def decide(approve: bool) -> object:
        async with db.transaction() as session:
            return await invites.decide(session, held.id, approve, START)

    decided = await asyncio.gather(*(decide(i % 2 == 0) for i in range(10)))

    assert sum(d is not None for d in decided) == 1
    async with db.reader() as session:
        assert [row.id for row in await invites.listing(session, invites.REVIEW)] == []


async def test_codes_are_read_case_and_space_insensitively():
    assert invites.normalise_code(" ab-c 2x9 ") == "ABC2X9"


async def test_memberships_join_leave_and_rejoin(db: Database, new_member):
    someone = await new_member()
    async with db.transaction() as session:
        club, created = await communities.upsert(
            session, "Tea", {"names": {"en": "Tea"}, "min_tier": "silver"}, START
        )
    assert created and club.slug == "tea"

    async def join() -> bool:
        async with db.transaction() as session:
            return await communities.join(session, club.id, someone, "console", START)

    assert (await asyncio.gather(*(join() for _ in range(8)))).count(True) == 1
    async with db.transaction() as session:
        assert await communities.leave(session, club.id, someone, START) is True
        assert await communities.leave(session, club.id, someone, START) is False
        assert await communities.join(session, club.id, someone, "wechat", START) is True
    async with db.reader() as session:
        assert await communities.joined_ids(session, someone) == {club.id}
        updated, created_again = await communities.upsert(
            session, "tea", {"description": "Leaves"}, START
        )
        assert not created_again and updated.min_tier == "silver"


async def test_roles_are_granted_once_checked_and_revoked(db: Database, new_member):
    mod, admin = await new_member(), await new_member()
    async with db.transaction() as session:
        club, _ = await communities.upsert(session, "tea", {"names": {"en": "Tea"}}, START)
        assert await roles.grant(session, mod, roles.MODERATOR, club.id, START) is True
        assert await roles.grant(session, mod, roles.MODERATOR, club.id, START) is False
        assert await roles.grant(session, admin, roles.ADMIN, roles.EVERYWHERE, START) is True
    async with db.reader() as session:
        assert await roles.has(session, mod, roles.MODERATOR, club.id) is True
        assert await roles.has(session, mod, roles.MODERATOR, club.id + 1) is False
        assert await roles.has(session, mod, roles.STAFF) is False
        assert await roles.has(session, admin, roles.MODERATOR, club.id) is True  # admin: all
    async with db.transaction() as session:
        assert await roles.revoke(session, mod, roles.MODERATOR, club.id) is True
        assert await roles.revoke(session, mod, roles.MODERATOR, club.id) is False
        await roles.grant(session, mod, roles.STAFF, roles.EVERYWHERE, START)
        await roles.grant(session, admin, roles.STAFF, roles.EVERYWHERE, START)
        await roles.merge(session, admin, mod)
    async with db.reader() as session:
        held = sorted((r.role, r.community_id) for r in await roles.of_member(session, admin))
        assert held == [(roles.ADMIN, 0), (roles.STAFF, 0)]
        assert await roles.of_member(session, mod) == []
