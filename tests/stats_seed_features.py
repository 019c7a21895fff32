"""Flash sales, vouchers, complaints and campaigns for the stats seed (tests/stats_seed.py),
with known figures. "d ago" counts back from the test clock's START.

30-day period: sales S1 (3 d, 3 of 5 claimed), S2 (20 d, sold out 2 of 2) and S6 (6 d, 1 of 4,
cancelled while live) started; S3 is older, S4 scheduled, S5 cancelled before its start.
Vouchers: 3 issued (V1 used, V2 cancelled, V3 open), V4 expired 20 d ago, V5 is old.
Tickets: T1 met and scored 5, T2 breached and scored 2, T3 breached unanswered, T4 within its
deadline, T6 met and waiting; T5 is old. Campaigns C1 (2 d: sent, failed, muted, opted out at
the app, unreachable) and C2 (5 d: pending); C3 is old.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from storage.models import (
    Campaign,
    CampaignRecipient,
    Community,
    FlashClaim,
    FlashSale,
    OutboxPush,
    Reward,
    Ticket,
    Voucher,
)
from tests.conftest import START


def _ago(days: float):  # type: ignore[no-untyped-def]
    return START - timedelta(days=days)


# code: (state, starts d ago, ended d ago, stock, claimed, sold out, [(member, unit, used)])
SALES = {
    "S1": (
        "live",
        3,
        None,
        5,
        3,
        False,
        [("bob", 1, True), ("carol", 1, False), ("carol", 2, False)],
    ),
    "S2": ("ended", 20, 19.5, 2, 2, True, [("dave", 1, False), ("erin", 1, False)]),
    "S3": ("ended", 40, 39, 10, 1, False, [("alice", 1, False)]),
    "S4": ("scheduled", -1, None, 3, 0, False, []),
    "S5": ("cancelled", 1, 2, 4, 0, False, []),  # before it started
    "S6": ("cancelled", 6, 5.5, 4, 1, False, [("alice", 1, False)]),  # while live
}
# code: (member, state, issued d ago, used/cancelled/expired d ago)
VOUCHERS = {
    "V1": ("bob", "used", 2, 1),
    "V2": ("carol", "cancelled", 4, 3),
    "V3": ("carol", "issued", 10, None),
    "V4": ("alice", "expired", 60, 20),
    "V5": ("alice", "used", 60, 40),
}
# (member, state, filed d ago, first response hours later, resolved d ago, score)
TICKETS = [
    ("bob", "closed", 3, 1, 2, 5),
    ("carol", "resolved", 5, 6, 4, 2),
    ("dave", "open", 1, None, None, None),
    ("erin", "open", 1 / 24, None, None, None),
    ("alice", "closed", 40, 2, 39, 1),
    ("carol", "waiting", 10, 3, None, None),
]
DUE_HOURS = 4
# name: (started d ago, [(member, recipient status, outbox state, outbox error)])
CAMPAIGNS = {
    "C1": (
        2,
        [
            ("bob", "queued", "sent", None),
            ("carol", "queued", "failed", "blocked"),
            ("dave", "muted", None, None),
            ("erin", "queued", "failed", "muted"),
            ("alice", "unreachable", None, None),
        ],
    ),
    "C2": (5, [("bob", "queued", "pending", None)]),
    "C3": (50, [("carol", "queued", "sent", None)]),
}


async def seed_features(s, ids: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    coffee = (await s.execute(select(Community.id).where(Community.slug == "coffee"))).scalar_one()
    for code, (state, days, ended, stock, claimed, sold_out, claims) in SALES.items():
        sale = FlashSale(
            code=code,
            community_id=coffee,
            title=code,
            price=Decimal("9.90"),
            stock=stock,
            claimed=claimed,
            starts_at=_ago(days),
            ends_at=_ago(days - 1),
            state=state,
            created_at=_ago(days + 1),
            sold_out_at=_ago(days - 0.5) if sold_out else None,
            ended_at=None if ended is None else _ago(ended),
        )
        s.add(sale)
        await s.flush()
        for n, (name, unit, used) in enumerate(claims):
            s.add(
                FlashClaim(
                    claim_code=f"{code}C{n}",
                    sale_id=sale.id,
                    member_id=ids[name],
                    unit=unit,
                    claimed_at=_ago(days - 0.1),
                    used_at=_ago(days - 0.2) if used else None,
                )
            )
    mug = Reward(slug="mug", names={"en": "Mug"}, cost=8, created_at=_ago(100))
    s.add(mug)
    await s.flush()
    for code, (name, state, issued, then) in VOUCHERS.items():
        s.add(
            Voucher(
                code=code,
                reward_id=mug.id,
                member_id=ids[name],
                redemption_key=f"seed:{code}",
                cost=8,
                state=state,
                issued_at=_ago(issued),
                expires_at=_ago(then) if state == "expired" else _ago(issued - 30),
                used_at=_ago(then) if state == "used" else None,
                cancelled_at=_ago(then) if state == "cancelled" else None,
            )
        )
    for name, state, filed, hours, resolved, score in TICKETS:
        created = _ago(filed)
        due = created + timedelta(hours=DUE_HOURS)
        s.add(
            Ticket(
                member_id=ids[name],
                category="product",
                state=state,
                created_at=created,
                warn_at=due - timedelta(hours=1),
                first_response_due=due,
                first_response_at=None if hours is None else created + timedelta(hours=hours),
                resolved_at=None if resolved is None else _ago(resolved),
                score=score,
            )
        )
    for name, (days, recipients) in CAMPAIGNS.items():
        campaign = Campaign(
            name=name,
            segment={},
            texts={"en": "Hello"},
            state="sent",
            send_at=_ago(days),
            created_at=_ago(days + 1),
            started_at=_ago(days),
            finished_at=_ago(days),
        )
        s.add(campaign)
        await s.flush()
        for member, status, push_state, error in recipients:
            outbox_id = None
            if push_state is not None:
                push = OutboxPush(
                    dedupe_key=f"seed:{name}:{member}",
                    channel="telegram",
                    chat_id=member,
                    member_id=ids[member],
                    kind="campaign",
                    mode="send",
                    payload={},
                    state=push_state,
                    next_attempt_at=_ago(days),
                    last_error=error,
                    created_at=_ago(days),
                    updated_at=_ago(days),
                )
                s.add(push)
                await s.flush()
                outbox_id = push.id
            s.add(
                CampaignRecipient(
                    campaign_id=campaign.id,
                    member_id=ids[member],
                    status=status,
                    outbox_id=outbox_id,
                    created_at=_ago(days),
                )
            )
