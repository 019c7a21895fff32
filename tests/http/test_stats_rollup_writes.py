"""The roll-up's per-member rows (last check-in day, last spend, tier: `stats_members`) give
exactly the direct figures after each kind of write, both while the write is after the
roll-up's `through` (read live) and once the job has rolled it up: a check-in (one that raises
the tier too), an order and its refund, a spend, a tier change by `members.set_tier`, an
erasure and a merge. Both backends."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update

from storage import ledger, members
from storage.models import Identity, Member, StatsMember
from tests.http.conftest import order_body
from tests.stats_seed import seed
from tests.storage.test_stats_rollup import _roll, _same


async def _member(core: Any, channel: str, external_id: str) -> int:
    async with core.services.db.reader() as s:
        stmt = select(Identity.member_id).where(
            Identity.channel == channel, Identity.external_id == external_id
        )
        return int((await s.execute(stmt)).scalar_one())


async def _rows(core: Any) -> dict[int, tuple[str, Any, Any]]:
    async with core.services.db.reader() as s:
        rows = (await s.execute(select(StatsMember))).scalars()
        return {r.member_id: (r.tier, r.last_checkin_day, r.last_spend_at) for r in rows}


async def _tiers(core: Any) -> dict[int, str]:
    async with core.services.db.reader() as s:
        return {i: t for i, t in await s.execute(select(Member.id, Member.tier))}


async def _agree_live_then_rolled(core: Any, clock: Any) -> dict[int, dict[str, Any]]:
    """Figures with the roll-up equal the direct ones now (the write after `through`) and
    after the job rolled the write up; every roll-up row's tier is the member's now."""
    await _same(core)
    clock.advance(hours=2)
    assert await _roll(core) == 12  # 10-minute steps
    got = await _same(core)
    tiers = await _tiers(core)
    assert all(tier == tiers[member] for member, (tier, _, _) in (await _rows(core)).items())
    return got


async def _figures(core: Any) -> dict[str, Any]:
    from bot.admin import stats

    return await stats.figures(core.services, 30)


async def test_seeded_roll_up_has_a_row_per_member_who_checked_in_or_spent(core):
    ids = await seed(core.services.db)
    await _roll(core)

    rows = await _rows(core)

    assert ids["bob"] in rows and rows[ids["bob"]][2] is not None  # bob spent 2 days ago
    assert (await _same(core))[30]  # and the figures agree


async def test_a_check_in_new_and_returning(core, clock, chat):
    ids = await seed(core.services.db)
    await _roll(core)
    before = (await _figures(core))["benefits"]["by_tier"]["bronze"]["checked_in"]

    await chat("alice").say("checkin")  # alice: bronze, no check-in in the period
    await chat("zed").say("checkin")  # a new member

    got = (await _figures(core))["benefits"]["by_tier"]["bronze"]["checked_in"]
    assert got == before + 2
    await _agree_live_then_rolled(core, clock)
    assert ids["alice"] in await _rows(core)


async def test_a_check_in_that_raises_the_tier(core, clock, chat):
    ids = await seed(core.services.db)
    await chat("alice").say("checkin")
    clock.advance(days=1)
    await _roll(core)
    assert (await _rows(core))[ids["alice"]][0] == "bronze"
    async with core.services.db.transaction() as s:  # one growth short of silver
        await s.execute(update(Member).where(Member.id == ids["alice"]).values(growth=499))

    await chat("alice").say("checkin")

    assert (await _tiers(core))[ids["alice"]] == "silver"
    assert (await _rows(core))[ids["alice"]][0] == "silver"  # the trigger followed
    await _agree_live_then_rolled(core, clock)


async def test_a_tier_set_by_the_rules(core, clock):
    ids = await seed(core.services.db)
    await _roll(core)
    async with core.services.db.transaction() as s:
        await members.set_tier(s, ids["bob"], "diamond")  # has a row (spent)
        await members.set_tier(s, ids["dave"], "gold")  # has none (an adjustment only)

    rows = await _rows(core)
    assert rows[ids["bob"]][0] == "diamond" and rows[ids["dave"]] == ("gold", None, None)
    figures = await _figures(core)
    assert figures["benefits"]["by_tier"]["diamond"]["redeemed"] == 1
    await _agree_live_then_rolled(core, clock)


async def test_a_spend(core, clock):
    ids = await seed(core.services.db)
    await _roll(core)
    async with core.services.db.transaction() as s:
        now = clock.now()
        await ledger.earn(s, ids["alice"], 5, "gift", "rollup-writes:earn", now, expiry_days=365)
        await ledger.spend(s, ids["alice"], 5, "voucher", "rollup-writes:spend", now)

    got = (await _figures(core))["benefits"]["by_tier"]["bronze"]["redeemed"]

    assert got == 1
    await _agree_live_then_rolled(core, clock)


async def test_an_order_and_its_refund(core, clock, post_order, post_raw):
    await seed(core.services.db)
    await _roll(core)
    before = (await _figures(core))["orders"]

    assert (await post_order("R-1", external_id="1002", amount="80.00"))[0] == 200
    await _same(core)
    data = json.loads(order_body("R-1", external_id="1002", amount="80.00", status="refunded"))
    assert (await post_raw(json.dumps(data).encode()))[0] == 200

    got = await _figures(core)
    assert got["orders"]["refunded"] == before["refunded"] + 1
    await _agree_live_then_rolled(core, clock)


async def test_an_erasure(core, clock, chat, http):
    ids = await seed(core.services.db)
    await chat("alice").say("checkin")
    await _roll(core)
    before = await _figures(core)

    async with http.delete("/api/members/telegram/1001", headers=_auth()) as resp:
        assert resp.status == 200, await resp.text()

    after = await _figures(core)
    assert after["benefits"] == before["benefits"]
    assert ids["alice"] in await _rows(core)
    await _agree_live_then_rolled(core, clock)


async def test_a_merge(core, clock, chat):
    ids = await seed(core.services.db)
    await chat("alice").say("checkin")
    await _roll(core)
    async with core.services.db.transaction() as s:
        await members.merge(s, ids["bob"], ids["alice"])  # alice's check-in becomes bob's

    rows = await _rows(core)
    assert rows[ids["alice"]][1:] == (None, None)  # a linked-away shell: nothing of its own
    assert rows[ids["bob"]][1] is not None  # bob's check-in day is alice's
    await _agree_live_then_rolled(core, clock)


def _auth() -> dict[str, str]:
    from tests.http.conftest import AUTH

    return AUTH


async def _communities_agree(core: Any, clock: Any) -> dict[str, int]:
    """The members in a community per tier: the roll-up rows' counts equal the memberships'
    (the triggers on community_members), and each row's count is the member's memberships."""
    from sqlalchemy import func

    from bot.admin import stats as admin_stats
    from storage.models import CommunityMember
    from storage.stats import members as member_stats

    window = admin_stats.window(core.services, 30)
    async with core.services.db.reader() as s:
        rolled = await member_stats.benefit(s, window, "in_community")
        direct = await member_stats.direct_benefit(s, window, "in_community")
        joined = CommunityMember.status == "joined"
        per_member = select(CommunityMember.member_id, func.count()).where(joined)
        counts = dict((await s.execute(per_member.group_by(CommunityMember.member_id))).all())
        rows = select(StatsMember.member_id, StatsMember.communities)
        kept = {m: n for m, n in (await s.execute(rows)).all() if n}
    assert rolled == direct
    assert kept == counts
    return rolled


async def test_joining_leaving_and_merging_communities(core, clock):
    from storage import communities
    from storage.models import CommunityMember

    ids = await seed(core.services.db)
    await _roll(core)
    first = await _communities_agree(core, clock)
    async with core.services.db.transaction() as s:
        community = (await s.execute(select(CommunityMember.community_id).limit(1))).scalar()
        assert community is not None
        for who in ("alice", "bob", "carol", "dave", "erin"):
            await communities.join(s, community, ids[who], "code", clock.now())
    joined = await _communities_agree(core, clock)
    assert sum(joined.values()) > sum(first.values())
    async with core.services.db.transaction() as s:
        await communities.leave(s, community, ids["carol"], clock.now())
        await members.set_tier(s, ids["erin"], "gold")  # her row's tier follows
    await _communities_agree(core, clock)
    async with core.services.db.transaction() as s:
        await members.merge(s, ids["bob"], ids["alice"])  # both in it: one membership stays
    after = await _communities_agree(core, clock)
    assert after.get("gold", 0) >= 1
    await _agree_live_then_rolled(core, clock)
    await _communities_agree(core, clock)
