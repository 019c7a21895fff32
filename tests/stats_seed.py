"""A small programme with known figures for the stats and dashboard tests.

Now is the test clock's START (2026-03-10 10:00 Shanghai); "d ago" counts back from it. With
a 30-day period: alice was active only in the period before (churned), bob joined 35 days ago
and stays (30-day retention), carol and dave are new, erin came back after a quiet spell (won
back), and a linked-away shell account (merged into dave) counts nowhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.core.clock import local_day
from storage.db import Database
from storage.models import (
    Checkin,
    Community,
    CommunityMember,
    Identity,
    Invite,
    LedgerEntry,
    Member,
    Order,
)
from tests.conftest import SHANGHAI, START
from tests.stats_seed_features import seed_features


def ago(days: float) -> datetime:
    return START - timedelta(days=days)


def day_ago(days: int) -> Any:
    return local_day(START, SHANGHAI) - timedelta(days=days)


# name: (tier, joined d ago, points now, [(channel, external id)])
MEMBERS: dict[str, tuple[str, float, int, list[tuple[str, str]]]] = {
    "alice": ("bronze", 100, 12, [("console", "alice"), ("telegram", "1001")]),
    "bob": ("silver", 35, 17, [("telegram", "1002")]),
    "carol": ("gold", 5, 65, [("wechat", "o-carol")]),
    "dave": ("bronze", 2, 50, [("wechat", "o-dave")]),
    "erin": ("bronze", 70, 10, [("telegram", "1006")]),
}
# (member, kind, amount, d ago)
LEDGER = [
    ("alice", "earn", 10, 100),
    ("alice", "earn", 5, 50),
    ("alice", "expire", -3, 5),
    ("bob", "earn", 20, 34),
    ("bob", "earn", 5, 3),
    ("bob", "spend", -8, 2),
    ("carol", "earn", 5, 4),
    ("carol", "earn", 100, 4),
    ("carol", "reverse", -40, 1),
    ("dave", "adjust", 50, 1),
    ("erin", "earn", 5, 69),
    ("erin", "earn", 5, 10),
]
CHECKINS = [("alice", 50), ("bob", 3), ("carol", 4), ("erin", 10)]
# (order id, member, amount, refunded, status, d ago)
ORDERS = [
    ("O1", "carol", "100.00", "0", "paid", 4),
    ("O2", "bob", "50.00", "0", "paid", 3),
    ("O3", "bob", "30.00", "10.00", "paid", 2),
    ("O4", "erin", "20.00", "20.00", "refunded", 10),
    ("O5", "alice", "70.00", "0", "paid", 50),
]


async def seed(db: Database) -> dict[str, int]:
    """Write the programme; returns the member ids by name."""
    ids: dict[str, int] = {}
    async with db.transaction() as s:
        for name, (tier, joined, points, accounts) in MEMBERS.items():
            member = Member(
                created_at=ago(joined),
                display_name=name,
                tier=tier,
                points=points,
                growth=points,
                invite_code=name.upper()[:6],
            )
            s.add(member)
            await s.flush()
            ids[name] = member.id
            for channel, external_id in accounts:
                s.add(
                    Identity(
                        member_id=member.id,
                        channel=channel,
                        external_id=external_id,
                        created_at=ago(joined),
                    )
                )
        shell = Member(
            created_at=ago(1), tier="bronze", invite_code="SHELL1", merged_into_id=ids["dave"]
        )
        s.add(shell)
        for n, (name, kind, amount, days) in enumerate(LEDGER):
            s.add(
                LedgerEntry(
                    member_id=ids[name],
                    kind=kind,
                    amount=amount,
                    reason=kind,
                    idempotency_key=f"seed:{n}",
                    created_at=ago(days),
                )
            )
        for name, days in CHECKINS:
            s.add(
                Checkin(
                    member_id=ids[name], day=day_ago(days), streak=1, points=5, created_at=ago(days)
                )
            )
        for order_id, name, amount, back, status, days in ORDERS:
            s.add(
                Order(
                    order_id=order_id,
                    member_id=ids[name],
                    amount=Decimal(amount),
                    currency="CNY",
                    status=status,
                    created_at=ago(days),
                    refunded_amount=Decimal(back),
                )
            )
        s.add_all(
            [
                Invite(
                    inviter_id=ids["alice"],
                    invitee_id=ids["bob"],
                    via="code",
                    status="rewarded",
                    created_at=ago(35),
                    decided_at=ago(34),
                ),
                Invite(
                    inviter_id=ids["bob"],
                    invitee_id=ids["carol"],
                    via="telegram",
                    status="rewarded",
                    created_at=ago(5),
                    decided_at=ago(4),
                ),
                Invite(
                    inviter_id=ids["bob"],
                    invitee_id=ids["dave"],
                    via="wechat",
                    status="waiting",
                    created_at=ago(2),
                ),
            ]
        )
        coffee = Community(
            slug="coffee", names={"en": "Coffee lovers", "zh_CN": "咖啡爱好者"}, created_at=ago(200)
        )
        vip = Community(
            slug="vip", names={"en": "VIP lounge"}, min_tier="gold", created_at=ago(200)
        )
        s.add_all([coffee, vip])
        await s.flush()
        s.add_all(
            [
                CommunityMember(
                    community_id=coffee.id,
                    member_id=ids["alice"],
                    status="joined",
                    via="code",
                    joined_at=ago(80),
                ),
                CommunityMember(
                    community_id=coffee.id,
                    member_id=ids["carol"],
                    status="joined",
                    via="code",
                    joined_at=ago(3),
                ),
                CommunityMember(
                    community_id=coffee.id,
                    member_id=ids["erin"],
                    status="left",
                    via="code",
                    joined_at=ago(20),
                    left_at=ago(5),
                ),
            ]
        )
        await s.flush()
        await seed_features(s, ids)
    return ids
