"""The console's lists on the stats seed (tests/stats_seed*.py): flash sales, rewards, tickets
and campaigns, with their exact figures, pages and detail pages, in the operator's language."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.admin import campaigns as admin_campaigns
from storage import console, tickets, vouchers
from storage.models import Campaign, CampaignRecipient, FlashClaim, FlashSale, Reward, Voucher
from tests.conftest import START
from tests.statements import statements
from tests.stats_seed import seed


def rows(body: str, table: str) -> list[list[str]]:
    """The cells (tags stripped) of each data row of a table of the page."""
    found = re.search(rf'<table id="{table}">(.*?)</table>', body, re.S)
    assert found, table
    out = []
    for row in re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S)[1:]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        out.append([re.sub(r"<[^>]+>", "", c).strip() for c in cells])
    return out


def card(body: str, name: str) -> str:
    found = re.search(rf'id="{name}">(.*?)<', body)
    assert found, name
    return found.group(1)


@pytest.fixture
async def seeded(operator, core):
    ids = await seed(core.services.db)
    await operator.log_in()
    await operator.get("/dashboard/?lang=en")
    return ids


async def test_flash_sales_with_state_claimed_members_and_minutes_to_sell_out(operator, seeded):
    status, body, _ = await operator.get("/dashboard/flashsales")

    assert status == 200
    got = [[r[0], r[3], r[4], r[5], r[6]] for r in rows(body, "sales")]
    assert got == [
        ["S4", "scheduled", "0 / 3", "0", "—"],
        ["S5", "cancelled", "0 / 4", "0", "—"],
        ["S1", "live", "3 / 5", "2", "—"],
        ["S6", "cancelled", "1 / 4", "1", "—"],
        ["S2", "ended", "2 / 2", "2", "720.0"],
        ["S3", "ended", "1 / 10", "1", "—"],
    ]
    _, ended, _ = await operator.get("/dashboard/flashsales?state=ended")
    assert [r[0] for r in rows(ended, "sales")] == ["S2", "S3"]


async def test_a_sale_page_lists_its_claims_with_the_winners(operator, seeded):
    status, body, _ = await operator.get("/dashboard/flashsales/s1")

    assert status == 200
    assert (card(body, "sale-claimed"), card(body, "sale-members")) == ("3 / 5", "2")
    got = [[r[0], r[1], r[2], r[4] != "—"] for r in rows(body, "claims")]
    assert got == [
        ["S1C0", "telegram:1002", "1", True],
        ["S1C1", "wechat:o-carol", "1", False],
        ["S1C2", "wechat:o-carol", "2", False],
    ]
    assert 'href="/dashboard/members/telegram/1002"' in body
    status, body, _ = await operator.get("/dashboard/flashsales/NOPE")
    assert status == 404 and "Nothing is known as NOPE." in body


async def test_rewards_with_stock_redemptions_and_vouchers_by_state(operator, seeded):
    status, body, _ = await operator.get("/dashboard/rewards")

    assert status == 200
    # Mug: unlimited stock; V1..V5: 1 open, 2 used, 1 expired, 1 cancelled, no gifts.
    assert rows(body, "rewards") == [
        ["Mug (mug)", "8", "unlimited", "0", "5", "1", "2", "1", "1", "0", "yes"]
    ]


async def test_tickets_open_breached_and_scores(operator, seeded):
    status, body, _ = await operator.get("/dashboard/tickets")

    assert status == 200
    assert [card(body, n) for n in ("tickets-open", "tickets-open-late", "tickets-breached")] == [
        "3",
        "1",
        "2",
    ]
    assert card(body, "tickets-score") == "2.67"
    assert rows(body, "scores") == [["1", "1", "0", "0", "1"]]
    assert [(r[0], r[1], r[7]) for r in rows(body, "tickets")] == [
        ("C-000006", "waiting on the member", "no"),
        ("C-000003", "open", "yes"),
        ("C-000004", "open", "no"),
    ]
    _, late, _ = await operator.get("/dashboard/tickets?show=breached")
    assert [r[0] for r in rows(late, "tickets")] == ["C-000003", "C-000002"]
    _, every, _ = await operator.get("/dashboard/tickets?show=all")
    assert len(rows(every, "tickets")) == 6


async def test_a_ticket_page_shows_its_conversation(operator, core, seeded):
    async with core.services.db.transaction() as s:
        await tickets.add_message(s, 3, "member", seeded["dave"], "dave", "Broken <cup>", START)
        await tickets.add_message(s, 3, "staff", None, "Li", "Sorry!\nA new one.", START)
        await tickets.add_event(s, 3, "Li", "replied", START)

    status, body, _ = await operator.get("/dashboard/tickets/c-3")

    assert status == 200
    assert (card(body, "ticket-state"), card(body, "ticket-late")) == ("open", "yes")
    assert rows(body, "conversation") == [
        ["2026-03-10 02:00", "Member · dave", "Broken &lt;cup&gt;"],
        ["2026-03-10 02:00", "Staff · Li", "Sorry!\nA new one."],
    ]
    assert rows(body, "events") == [["2026-03-10 02:00", "Li", "replied"]]
    assert (await operator.get("/dashboard/tickets/C-999"))[0] == 404
    assert (await operator.get("/dashboard/tickets/x"))[0] == 404


async def test_campaigns_with_their_results(operator, seeded):
    status, body, _ = await operator.get("/dashboard/campaigns")

    assert status == 200
    got = [[r[0], r[1], r[2], *r[4:]] for r in rows(body, "campaigns")]
    assert got == [
        ["3", "C3", "sent", "—", "1", "1", "0", "0", "0"],
        ["2", "C2", "sent", "—", "1", "0", "0", "0", "0"],
        ["1", "C1", "sent", "—", "5", "1", "1", "2", "0"],
    ]
    status, page, _ = await operator.get("/dashboard/campaigns/1")
    assert status == 200
    assert [card(page, f"campaign-{n}") for n in ("recipients", "sent", "opted-out")] == [
        "5",
        "1",
        "2",
    ]
    assert [r[1] for r in rows(page, "recipients")] == [
        "sent",
        "failed",
        "opted out",
        "opted out",
        "unreachable",
    ]
    assert (await operator.get("/dashboard/campaigns/99"))[0] == 404


async def test_a_voucher_campaign_counts_its_redeemed_vouchers(operator, core, seeded):
    services = core.services
    made, _ = await admin_campaigns.create(
        services,
        {"name": "mugs", "texts": {"en": "A mug"}, "segment": {"tier": "bronze"}},
    )
    gift, _ = await admin_campaigns.create(
        services,
        {"name": "mugs2", "texts": {"en": "A mug"}, "reward_voucher": "mug", "reward_points": 5},
    )
    async with services.db.reader() as s:
        people = await console.recipients(s, gift["id"], 1, 50)
    codes = []
    async with services.db.reader() as s:
        for row in people.rows:
            voucher = await s.get(vouchers.Voucher, row.recipient.voucher_id)
            assert voucher is not None
            codes.append(voucher.code)
    async with services.db.transaction() as s:
        await vouchers.use(s, codes[0], START)

    _, listing, _ = await operator.get("/dashboard/campaigns")
    _, page, _ = await operator.get(f"/dashboard/campaigns/{gift['id']}")
    _, mall, _ = await operator.get("/dashboard/rewards")

    first = rows(listing, "campaigns")[0]
    assert (first[1], first[4], first[5], first[-1]) == (
        "mugs2",
        "voucher mug · +5 points",
        "5",
        "1",
    )
    assert rows(listing, "campaigns")[1][4] == "—" and made["redeemed"] == 0
    assert card(page, "campaign-redeemed") == "1"
    assert sorted(r[3] for r in rows(page, "recipients")) == ["issued"] * 4 + ["used"]
    # Five gifts more (everyone): 5 redeemed, 10 vouchers, 5 open, 3 used, 5 gifts.
    assert rows(mall, "rewards")[0][3:] == ["5", "10", "5", "3", "1", "1", "5", "yes"]


async def test_lists_are_paged(operator, core, seeded, monkeypatch):
    from bot.dashboard import campaigns as page_module

    monkeypatch.setattr(page_module, "PAGE_SIZE", 2)
    _, first, _ = await operator.get("/dashboard/campaigns")
    _, second, _ = await operator.get("/dashboard/campaigns?page=2")

    assert [r[0] for r in rows(first, "campaigns")] == ["3", "2"]
    assert 'href="?page=2" rel="next"' in first and 'rel="prev"' not in first
    assert [r[0] for r in rows(second, "campaigns")] == ["1"]
    assert 'href="?page=1" rel="prev"' in second and 'rel="next"' not in second


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh_CN", ["限时抢购", "积分兑换", "工单", "营销活动"]),
        ("zh_TW", ["限時搶購", "積分兌換", "工單", "行銷活動"]),
        ("en", ["Flash sales", "Rewards", "Tickets", "Campaigns"]),
    ],
)
async def test_the_new_pages_speak_the_operators_language(operator, seeded, lang, words):
    await operator.get(f"/dashboard/?lang={lang}")
    for path, word in zip(("flashsales", "rewards", "tickets", "campaigns"), words, strict=True):
        status, body, _ = await operator.get(f"/dashboard/{path}")
        assert status == 200 and f"<h1>{word}</h1>" in body, (path, word)


LISTS = [
    "/dashboard/flashsales",
    "/dashboard/flashsales/S1",
    "/dashboard/rewards",
    "/dashboard/tickets?show=all",
    "/dashboard/tickets/C-000003",
    "/dashboard/campaigns",
    "/dashboard/campaigns/1",
]


async def _statements(core, operator, path: str) -> int:
    """How many SQL statements rendering the page ran."""
    with statements(core.services.db) as ran:
        status, _, _ = await operator.get(path)
    assert status == 200, path
    return len(ran)


async def _more_of_everything(core, ids: dict[str, int]) -> None:
    """Rows on every list: claims of S1, rewards with vouchers, tickets with messages,
    campaigns with recipients."""
    async with core.services.db.transaction() as s:
        sale = (await s.execute(select(FlashSale).where(FlashSale.code == "S1"))).scalar_one()
        for n, name in enumerate(("dave", "erin", "alice")):
            s.add(
                FlashClaim(
                    claim_code=f"MORE{n}",
                    sale_id=sale.id,
                    member_id=ids[name],
                    unit=1,
                    claimed_at=START,
                )
            )
        for n, name in enumerate(("bob", "carol", "dave")):
            reward = Reward(slug=f"r{n}", names={"en": f"R{n}"}, cost=5, created_at=START)
            s.add(reward)
            await s.flush()
            s.add(
                Voucher(
                    code=f"MORE{n}",
                    reward_id=reward.id,
                    member_id=ids[name],
                    redemption_key=f"more:{n}",
                    cost=5,
                    state="issued",
                    issued_at=START,
                    expires_at=START + timedelta(days=30),
                )
            )
            await tickets.file(
                s, ids[name], "other", "More", START, warn_at=START, due=START, author=name
            )
            await tickets.add_message(s, 3, "staff", None, "Li", f"More {n}", START)
            await tickets.add_event(s, 3, "Li", f"more {n}", START)
            campaign = Campaign(
                name=f"M{n}",
                segment={},
                texts={"en": "More"},
                state="sent",
                send_at=START,
                created_at=START,
            )
            s.add(campaign)
            await s.flush()
            s.add(
                CampaignRecipient(
                    campaign_id=campaign.id, member_id=ids[name], status="muted", created_at=START
                )
            )


async def test_each_page_runs_as_many_statements_whatever_its_rows(operator, core, seeded):
    before = {path: await _statements(core, operator, path) for path in LISTS}
    await _more_of_everything(core, seeded)
    after = {path: await _statements(core, operator, path) for path in LISTS}

    assert after == before
    assert min(before.values()) >= 1 and max(before.values()) <= 6
