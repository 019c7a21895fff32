"""A member's page on the stats seed (tests/stats_seed*.py): their accounts, tier and balance,
ledger, complaints, vouchers, flash-sale claims and communities, with exact rows; bounded lists
in as many SQL statements whatever the member holds; nothing personal once they are forgotten."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.admin import privacy as admin_privacy
from storage import tickets
from storage.models import (
    Checkin,
    Community,
    CommunityMember,
    FlashClaim,
    FlashSale,
    Identity,
    LedgerEntry,
    Member,
    Reward,
    Voucher,
)
from tests.conftest import START
from tests.dashboard.test_console_pages import _statements, card, rows
from tests.stats_seed import ago, day_ago, seed

CAROL = "/dashboard/members/wechat/o-carol"


@pytest.fixture
async def seeded(operator, core):
    ids = await seed(core.services.db)
    await operator.log_in()
    await operator.get("/dashboard/?lang=en")
    return ids


async def test_a_member_page_shows_tier_balance_and_every_list(operator, core, seeded):
    async with core.services.db.transaction() as s:
        await tickets.add_message(s, 2, "member", seeded["carol"], "carol", "Cracked", START)
        later = START + timedelta(hours=1)
        await tickets.add_message(s, 2, "staff", None, "Li", "Sorry", later)

    status, body, _ = await operator.get(CAROL)

    assert status == 200
    assert [card(body, f"member-{n}") for n in ("points", "tier", "growth", "streak")] == [
        "65",
        "Gold",
        "65",
        "0",  # her one check-in was 4 days ago
    ]
    assert "Growth (9935 more for Diamond)" in body
    assert "Display name: carol" in body
    assert rows(body, "accounts") == [["wechat", "o-carol", "2026-03-05 02:00", "yes"]]
    assert [r[:3] for r in rows(body, "ledger")] == [
        ["2026-03-09 02:00", "reversed", "-40"],
        ["2026-03-06 02:00", "earned", "+100"],  # the same moment: the later entry first
        ["2026-03-06 02:00", "earned", "+5"],
    ]
    assert rows(body, "member-tickets") == [
        ["C-000002", "resolved", "Product", "2026-03-05 02:00", "2026-03-10 03:00"],
        ["C-000006", "waiting on the member", "Product", "2026-02-28 02:00", "—"],
    ]
    assert 'href="/dashboard/tickets/C-000002"' in body
    assert rows(body, "member-vouchers") == [
        ["V2", "Mug", "cancelled", "2026-03-06 02:00", "2026-04-05 02:00", "—"],
        ["V3", "Mug", "issued", "2026-02-28 02:00", "2026-03-30 02:00", "—"],
    ]
    assert rows(body, "member-claims") == [
        ["S1", "S1C2", "no", "2026-03-07 04:24"],
        ["S1", "S1C1", "no", "2026-03-07 04:24"],
    ]
    assert 'href="/dashboard/flashsales/S1"' in body
    assert rows(body, "member-communities") == [
        ["Coffee lovers (coffee)", "joined", "2026-03-07 02:00", "—"]
    ]
    totals = ("accounts", "ledger", "tickets", "vouchers", "claims", "communities")
    assert [card(body, f"{n}-total") for n in totals] == ["1", "3", "2", "2", "2", "1"]
    assert "The latest" not in body  # every list is whole


async def test_used_and_lapsed_vouchers_claims_and_communities_left(operator, seeded):
    _, alice, _ = await operator.get("/dashboard/members/console/alice")
    _, bob, _ = await operator.get("/dashboard/members/telegram/1002")
    _, erin, _ = await operator.get("/dashboard/members/telegram/1006")

    assert [r[0] for r in rows(alice, "accounts")] == ["console", "telegram"]
    assert [(r[0], r[2], r[5]) for r in rows(alice, "member-vouchers")] == [
        ("V5", "used", "2026-01-29 02:00"),  # issued at the same moment: the later first
        ("V4", "expired", "—"),
    ]
    assert [r[:3] for r in rows(alice, "member-claims")] == [
        ["S6", "S6C0", "no"],
        ["S3", "S3C0", "no"],
    ]
    assert [(r[0], r[1]) for r in rows(alice, "member-tickets")] == [("C-000005", "closed")]
    assert rows(bob, "member-claims") == [["S1", "S1C0", "2026-03-07 06:48", "2026-03-07 04:24"]]
    assert "Growth (1983 more for Gold)" in bob
    assert rows(bob, "member-communities") == [["Nothing here."]]
    assert rows(erin, "member-communities") == [
        ["Coffee lovers (coffee)", "left", "2026-02-18 02:00", "2026-03-05 02:00"]
    ]


@pytest.mark.parametrize(("days", "streak"), [(0, "4"), (1, "4"), (2, "0")])
async def test_the_streak_is_alive_until_a_day_is_missed(operator, core, seeded, days, streak):
    async with core.services.db.transaction() as s:
        s.add(
            Checkin(
                member_id=seeded["bob"], day=day_ago(days), streak=4, points=5, created_at=ago(days)
            )
        )

    _, body, _ = await operator.get("/dashboard/members/telegram/1002")

    assert card(body, "member-streak") == streak


async def test_a_linked_away_account_leads_to_its_member_and_unknown_ones_are_404(
    operator, core, seeded
):
    async with core.services.db.reader() as s:
        shell = (
            await s.execute(select(Member.id).where(Member.merged_into_id == seeded["dave"]))
        ).scalar_one()

    status, _, headers = await operator.get(f"/dashboard/members/{shell}")
    assert (status, headers["Location"]) == (303, f"/dashboard/members/{seeded['dave']}")
    status, body, _ = await operator.get(f"/dashboard/members/{seeded['dave']}")
    assert status == 200 and rows(body, "accounts")[0][:2] == ["wechat", "o-dave"]
    assert (await operator.get("/dashboard/members/999"))[0] == 404
    assert (await operator.get("/dashboard/members/x1"))[0] == 404
    assert (await operator.get("/dashboard/members/wechat/nobody"))[0] == 404


async def test_a_forgotten_members_page_keeps_numbers_and_shows_nothing_personal(
    operator, core, seeded
):
    services = core.services
    async with services.db.transaction() as s:
        await tickets.add_message(s, 2, "member", seeded["carol"], "carol", "Cracked mug", START)
        await s.execute(
            Member.__table__.update().where(Member.id == seeded["carol"]).values(birthday="07-14")
        )
    await admin_privacy.erase_member(services, "wechat", "o-carol")

    status, body, _ = await operator.get(f"/dashboard/members/{seeded['carol']}")

    assert status == 200
    assert 'id="member-erased"' in body
    for personal in ("carol", "o-carol", "Cracked", "07-14", "Display name:", "Language:"):
        assert personal not in body, personal
    assert card(body, "member-points") == "65"
    assert rows(body, "accounts") == [["Nothing here."]]
    assert [r[0] for r in rows(body, "member-tickets")] == ["C-000002", "C-000006"]
    assert [r[0] for r in rows(body, "member-vouchers")] == ["V2", "V3"]
    assert (await operator.get(CAROL))[0] == 404
    # The console's lists lead to the forgotten member by number.
    _, listing, _ = await operator.get("/dashboard/tickets?show=all")
    assert f'<a href="/dashboard/members/{seeded["carol"]}">#{seeded["carol"]}</a>' in listing


async def _lots_for(core, member_id: int, n: int) -> None:
    """`n` more of everything on the member's page."""
    async with core.services.db.transaction() as s:
        sale = (await s.execute(select(FlashSale).where(FlashSale.code == "S4"))).scalar_one()
        reward = (await s.execute(select(Reward).where(Reward.slug == "mug"))).scalar_one()
        for i in range(n):
            at = START - timedelta(minutes=i)
            s.add(
                Identity(member_id=member_id, channel="console", external_id=f"x{i}", created_at=at)
            )
            s.add(
                LedgerEntry(
                    member_id=member_id,
                    kind="earn",
                    amount=1,
                    reason="more",
                    idempotency_key=f"more:{i}",
                    created_at=at,
                )
            )
            ticket = await tickets.file(
                s, member_id, "other", "More", at, warn_at=at, due=at, author="carol"
            )
            await tickets.add_message(s, ticket.id, "staff", None, "Li", "Yes", at)
            s.add(
                Voucher(
                    code=f"MORE{i}",
                    reward_id=reward.id,
                    member_id=member_id,
                    redemption_key=f"more:{i}",
                    cost=8,
                    state="issued",
                    issued_at=at,
                    expires_at=at + timedelta(days=30),
                )
            )
            s.add(
                FlashClaim(
                    claim_code=f"MORE{i}",
                    sale_id=sale.id,
                    member_id=member_id,
                    unit=i + 1,
                    claimed_at=at,
                )
            )
            group = Community(slug=f"more{i}", names={"en": f"More {i}"}, created_at=at)
            s.add(group)
            await s.flush()
            s.add(
                CommunityMember(
                    community_id=group.id,
                    member_id=member_id,
                    status="joined",
                    via="code",
                    joined_at=at,
                )
            )


async def test_the_member_page_runs_as_many_statements_whatever_the_member_holds(
    operator, core, seeded
):
    before = await _statements(core, operator, CAROL)
    await _lots_for(core, seeded["carol"], 25)
    after = await _statements(core, operator, CAROL)

    assert after == before == 8  # the member by account, the member, then one per list
    _, body, _ = await operator.get(CAROL)
    for table in ("accounts", "ledger", "member-tickets", "member-vouchers", "member-claims"):
        assert len(rows(body, table)) == 20, table
    assert len(rows(body, "member-communities")) == 20
    totals = ("accounts", "ledger", "tickets", "vouchers", "claims", "communities")
    assert [card(body, f"{n}-total") for n in totals] == ["26", "28", "27", "27", "27", "26"]
    assert body.count("The latest 20 of 2") == 6


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh_CN", ["会员", "工单", "优惠券", "限时抢购领取", "社群"]),
        ("zh_TW", ["會員", "工單", "優惠券", "限時搶購領取", "社群"]),
        ("en", ["Member", "Tickets", "Vouchers", "Flash-sale claims", "Communities"]),
    ],
)
async def test_the_member_page_speaks_the_operators_language(operator, seeded, lang, words):
    await operator.get(f"/dashboard/?lang={lang}")
    status, body, _ = await operator.get(CAROL)

    assert status == 200
    assert f"<h1>{words[0]} #{seeded['carol']}</h1>" in body
    for word in words[1:]:
        assert f"<h2>{word} " in body, word
