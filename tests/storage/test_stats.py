"""The operators' figures on a seeded programme with known answers, on both backends."""

from __future__ import annotations

from bot.admin import stats
from tests.stats_seed import day_ago, seed

TIERS = ("bronze", "silver", "gold", "diamond")


async def _figures(core, days=30):
    await seed(core.services.db)
    return await stats.figures(core.services, days)


async def test_members_total_new_active_by_tier_and_app(core):
    got = await _figures(core)

    members = got["members"]
    assert {k: members[k] for k in ("total", "new", "active")} == {
        "total": 5,  # the linked-away shell is not a member of its own
        "new": 2,
        "active": 3,  # bob, carol, erin; dave only got an adjustment
    }
    assert members["by_tier"] == {"bronze": 3, "silver": 1, "gold": 1, "diamond": 0}
    assert list(members["by_tier"]) == list(TIERS)
    assert members["by_channel"] == {"console": 1, "telegram": 3, "wechat": 2}


async def test_retention_of_cohorts_churned_and_won_back(core):
    members = (await _figures(core))["members"]

    thirty, ninety = members["retention"]["30"], members["retention"]["90"]
    assert (thirty["cohort"], thirty["active"], thirty["rate"]) == (1, 1, 1.0)  # bob
    assert (ninety["cohort"], ninety["active"], ninety["rate"]) == (1, 0, 0.0)  # alice
    assert (members["churned"], members["won_back"]) == (1, 1)  # alice; erin


async def test_checkins_per_day_cover_the_whole_period(core):
    checkins = (await _figures(core))["checkins"]

    assert (checkins["total"], checkins["members"]) == (3, 3)
    per_day = checkins["per_day"]
    assert len(per_day) == 30
    assert per_day[-1]["day"] == day_ago(0).isoformat()
    assert per_day[0]["day"] == day_ago(29).isoformat()
    busy = {d["day"]: d["count"] for d in per_day if d["count"]}
    assert busy == {day_ago(n).isoformat(): 1 for n in (3, 4, 10)}


async def test_points_by_kind_and_outstanding(core):
    got = await _figures(core)

    assert got["points"] == {
        "earned": 115,
        "spent": 8,
        "expired": 3,
        "reversed": 40,
        "adjusted": 50,
        "outstanding": 154,
    }
    assert got["redemptions"]["points_spent"] == 8


async def test_invites_and_communities(core):
    got = await _figures(core)

    assert got["invites"] == {
        "new": 2,
        "by_status": {"waiting": 1, "review": 0, "rewarded": 1, "rejected": 0, "void": 0},
        "rewarded": 1,
    }
    assert [(c["slug"], c["members"], c["joined"], c["left"]) for c in got["communities"]] == [
        ("coffee", 2, 2, 1),
        ("vip", 0, 0, 0),
    ]
    assert got["communities"][0]["names"]["zh_CN"] == "咖啡爱好者"


async def test_orders_repurchase_and_spend_per_member_by_tier(core):
    orders = (await _figures(core))["orders"]

    assert {k: v for k, v in orders.items() if k != "by_tier"} == {
        "count": 4,
        "refunded": 1,
        "amount": "200.00",
        "refunded_amount": "30.00",
        "net": "170.00",
        "buyers": 2,
        "repeat_buyers": 1,
        "repurchase_rate": 0.5,
    }
    assert orders["by_tier"]["silver"] == {
        "members": 1,
        "buyers": 1,
        "repeat_buyers": 1,
        "repurchase_rate": 1.0,
        "spend": "70.00",
        "spend_per_member": "70.00",
        "spend_per_buyer": "70.00",
    }
    assert orders["by_tier"]["gold"]["spend_per_member"] == "100.00"
    assert orders["by_tier"]["bronze"] == {
        "members": 3,
        "buyers": 0,
        "repeat_buyers": 0,
        "repurchase_rate": None,
        "spend": "0.00",
        "spend_per_member": "0.00",
        "spend_per_buyer": None,
    }


async def test_benefit_use_by_tier(core):
    by_tier = (await _figures(core))["benefits"]["by_tier"]

    picked = {
        t: (v["members"], v["checked_in"], v["redeemed"], v["in_community"])
        for t, v in by_tier.items()
    }
    assert picked == {
        "bronze": (3, 1, 0, 1),
        "silver": (1, 1, 1, 0),
        "gold": (1, 1, 0, 1),
        "diamond": (0, 0, 0, 0),
    }
    assert by_tier["bronze"]["checked_in_rate"] == round(1 / 3, 4)
    assert by_tier["diamond"]["checked_in_rate"] is None


async def test_a_shorter_period_counts_less(core):
    got = await _figures(core, days=7)

    assert got["period"]["days"] == 7
    assert (got["members"]["new"], got["members"]["active"]) == (2, 2)  # erin was 10 days ago
    assert got["checkins"]["total"] == 2
    assert got["orders"]["count"] == 3


async def test_flash_sales_started_claimed_and_sell_through(core):
    got = await _figures(core)

    assert got["flash_sales"] == {
        "started": 3,  # S1, S2, S6 (cancelled while live); not S3 (older), S4, S5
        "sold_out": 1,
        "stock": 11,
        "claimed": 6,
        "sell_through": round(6 / 11, 4),
        "members": 5,  # bob, carol (twice), dave, erin, alice
        "used": 1,
    }


async def test_redemptions_vouchers_by_moment_and_by_tier(core):
    redemptions = (await _figures(core))["redemptions"]

    assert redemptions["points_spent"] == 8
    assert redemptions["vouchers"] == {
        "issued": 3,
        "used": 1,
        "cancelled": 1,
        "expired": 1,
        "points": 24,
    }
    assert redemptions["by_tier"] == {
        "bronze": {"issued": 0, "used": 0},
        "silver": {"issued": 1, "used": 1},
        "gold": {"issued": 2, "used": 0},
        "diamond": {"issued": 0, "used": 0},
    }


async def test_complaints_sla_median_and_score(core):
    complaints = (await _figures(core))["complaints"]

    assert complaints == {
        "filed": 5,
        "resolved": 2,
        "open": 3,
        "first_response_met": 2,
        "breaches": 2,  # one answered late, one unanswered past its deadline
        "first_response_sla_met": 0.5,
        "first_response_median_hours": 3.0,  # of 1, 3 and 6 hours
        "average_score": 3.5,  # 5 and 2; the older ticket's 1 was resolved before
    }


async def test_campaigns_reach(core):
    campaigns = (await _figures(core))["campaigns"]

    assert campaigns == {
        "campaigns": 2,
        "recipients": 6,
        "sent": 1,
        "failed": 1,
        "opted_out": 2,  # muted before sending, and refused by the app as muted
        "unreachable": 1,
        "pending": 1,
    }


async def test_a_shorter_period_counts_less_of_the_newer_features(core):
    got = await _figures(core, days=7)

    sales = got["flash_sales"]
    assert (sales["started"], sales["stock"], sales["claimed"], sales["members"]) == (2, 9, 4, 3)
    vouchers = got["redemptions"]["vouchers"]
    assert (vouchers["issued"], vouchers["used"], vouchers["expired"]) == (2, 1, 0)
    complaints = got["complaints"]
    assert (complaints["filed"], complaints["breaches"]) == (4, 2)
    assert complaints["first_response_median_hours"] == 3.5  # of 1 and 6: the two middle ones
    assert complaints["first_response_sla_met"] == round(1 / 3, 4)
    assert (got["campaigns"]["campaigns"], got["campaigns"]["recipients"]) == (2, 6)


async def test_empty_database_has_zeros_not_errors(core):
    got = await stats.figures(core.services, 30)

    assert got["members"]["total"] == 0
    assert got["members"]["retention"]["30"]["rate"] is None
    assert got["orders"]["net"] == "0.00"
    assert got["orders"]["repurchase_rate"] is None
    assert got["flash_sales"]["sell_through"] is None
    assert got["redemptions"]["vouchers"]["issued"] == 0
    assert got["complaints"]["first_response_median_hours"] is None
    assert got["complaints"]["average_score"] is None
    assert got["campaigns"]["recipients"] == 0


async def test_the_figures_take_as_many_queries_for_many_members_as_for_few(core):
    """Aggregates, not loops over members: more members, the same number of statements."""
    from sqlalchemy import event

    from storage.models import LedgerEntry, Member
    from tests.stats_seed import ago

    db = core.services.db
    statements: list[str] = []

    def count(conn, cursor, statement, *rest):
        statements.append(statement)

    engines = {id(e): e for e in (db.engine.sync_engine, db._read_engine.sync_engine)}
    for engine in engines.values():
        event.listen(engine, "before_cursor_execute", count)
    await seed(db)

    statements.clear()
    await stats.figures(core.services, 30)
    few = len(statements)
    async with db.transaction() as s:
        for n in range(40):
            member = Member(created_at=ago(n), invite_code=f"MANY{n:02d}", tier="silver")
            s.add(member)
            await s.flush()
            s.add(
                LedgerEntry(
                    member_id=member.id,
                    kind="earn",
                    amount=5,
                    reason="checkin",
                    idempotency_key=f"many:{n}",
                    created_at=ago(n / 2),
                )
            )
    statements.clear()
    got = await stats.figures(core.services, 30)

    assert got["members"]["total"] == 45
    assert len(statements) == few


async def test_the_report_reads_every_lane_on_one_snapshot(core):
    """PostgreSQL runs the figures on several connections at once: each sees the data as
    the first did, so a member who joins meanwhile counts in none of them. SQLite reads on
    one connection."""
    from sqlalchemy import func, select

    from storage import stats as storage_stats
    from storage.models import Member
    from tests.stats_seed import ago

    db = core.services.db
    await seed(db)
    count = select(func.count()).select_from(Member)
    async with storage_stats.report(db) as sessions:
        first = (await sessions[0].execute(count)).scalar_one()
        async with db.transaction() as s:
            s.add(Member(created_at=ago(0), invite_code="LATE0001", tier="bronze"))
        seen = [(await s.execute(count)).scalar_one() for s in sessions]

    if db.dialect == "sqlite":
        assert len(sessions) == 1
        return
    assert len(sessions) == storage_stats.LANES
    assert first == 6  # 5 members and the linked-away shell
    assert seen == [6] * storage_stats.LANES
