"""Property: any sequence of ledger operations keeps the balance, the lots and FIFO honest.

Each hypothesis example is a fresh member on the test's shared database, so one test covers a
backend. pytest-asyncio runs `@given` async tests on the test's own event loop (every example
is awaited there), so the function-scoped `db` fixture is usable across examples.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage import ledger, members, rewards, vouchers
from storage.db import Database
from storage.errors import InsufficientPoints
from tests.conftest import START
from tests.storage.support import Entry, entries, points


@dataclass(frozen=True)
class Earn:
    amount: int
    days: int  # the lot expires this many days after now


@dataclass(frozen=True)
class Spend:
    amount: int


@dataclass(frozen=True)
class Adjust:
    amount: int  # positive opens a lot, negative spends


@dataclass(frozen=True)
class Refund:
    pick: int  # which earlier earn (modulo how many there are) to reverse by its key


@dataclass(frozen=True)
class Advance:
    days: int  # time passes; due lots wait for the next sweep or spend


@dataclass(frozen=True)
class Expire:
    days: int  # time passes, then the expiry sweep runs


@dataclass(frozen=True)
class Redeem:
    lottery: bool  # a draw of the lottery, else the voucher reward


@dataclass(frozen=True)
class Cancel:
    pick: int  # which earlier voucher (modulo how many) the till cancels


REDEEM_COST, DRAW_COST, VOUCHER_DAYS, CANCEL_EXPIRY_DAYS = 40, 15, 12, 365
EARNS = st.builds(Earn, st.integers(1, 100), st.integers(1, 60))
ANY_OPERATION = st.one_of(
    EARNS,
    st.builds(Spend, st.integers(1, 150)),
    st.builds(Adjust, st.integers(-80, 80).filter(bool)),
    st.builds(Refund, st.integers(0, 20)),
    st.builds(Advance, st.integers(0, 20)),
    st.builds(Expire, st.integers(0, 30)),
    st.builds(Redeem, st.booleans()),
    st.builds(Cancel, st.integers(0, 20)),
)
# A few lots first (their expiries cross their creation order), so debits have a FIFO choice.
OPERATIONS = st.builds(
    lambda opening, rest: opening + rest,
    st.lists(EARNS, min_size=2, max_size=5),
    st.lists(ANY_OPERATION, min_size=1, max_size=14),
)
ADJUST_EXPIRY_DAYS = 45


@dataclass
class Lot:
    key: str
    expires_at: datetime
    remaining: int


class Model:
    """What the ledger must hold: lots consumed soonest-expiring first (ties: oldest)."""

    def __init__(self) -> None:
        self.lots: list[Lot] = []

    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots)

    def held_at(self, now: datetime) -> int:
        """The balance once lots due at `now` are expired."""
        return sum(lot.remaining for lot in self.lots if lot.expires_at > now)

    def expire(self, now: datetime) -> None:
        for lot in self.lots:
            if lot.expires_at <= now:
                lot.remaining = 0

    def take(self, amount: int, first: str | None = None) -> None:
        order = sorted(
            (lot for lot in self.lots if lot.remaining),
            key=lambda lot: (lot.key != first, lot.expires_at),  # stable: creation order
        )
        for lot in order:
            used = min(amount, lot.remaining)
            lot.remaining -= used
            amount -= used
        assert amount == 0


def lots_of(rows: list[Entry]) -> dict[str, Entry]:
    return {e.key: e for e in rows if e.expires_at is not None}


async def check_invariants(db: Database, mid: int, model: Model, now: datetime) -> list[Entry]:
    rows = await entries(db, mid)
    balance = await points(db, mid)
    async with db.sessions() as session:
        assert await ledger.ledger_sum(session, mid) == balance
        assert await ledger.balance_of(session, mid) == balance
    lots = lots_of(rows)
    assert sum(lot.remaining for lot in lots.values()) == balance
    assert balance >= 0
    assert all(lot.remaining >= 0 for lot in lots.values())
    assert balance == model.balance()
    assert {k: lot.remaining for k, lot in lots.items()} == {
        lot.key: lot.remaining for lot in model.lots
    }
    return rows


def assert_fifo(before: dict[str, Entry], after: dict[str, Entry], now: datetime) -> None:
    """No lot consumed by this debit expires later than a lot it left open."""
    consumed = [k for k in after if after[k].remaining < before[k].remaining]
    left_open = [k for k in after if after[k].remaining > 0 and after[k].expires_at > now]
    for taken in consumed:
        for kept in left_open:
            assert after[kept].expires_at >= after[taken].expires_at, (taken, kept)


async def _mall(db: Database, now: datetime) -> tuple[str, str]:
    """A voucher reward and a lottery (unlimited stock: only points can refuse them)."""
    tag = uuid.uuid4().hex[:12]
    prize = {"slug": "p", "names": {"en": "P"}, "weight": 1, "stock": None}
    async with db.transaction() as session:
        base = {"names": {"en": "R"}, "stock": None, "valid_days": VOUCHER_DAYS}
        await rewards.upsert(session, f"v{tag}", {**base, "cost": REDEEM_COST}, now)
        lottery = {**base, "cost": DRAW_COST, "kind": rewards.LOTTERY}
        await rewards.upsert(session, f"l{tag}", lottery, now, [prize])
    return f"v{tag}", f"l{tag}"


async def run_example(db: Database, operations: list[object]) -> None:
    now = START
    member, created = await members.get_or_create(db, "console", f"prop-{uuid.uuid4().hex}", now)
    assert created
    mid, model = member.id, Model()
    prefix = f"{mid}:"
    earned: list[tuple[str, int]] = []  # (key, amount) of every earn, for refunds
    voucher_slug, lottery_slug = await _mall(db, now)
    issued: list[tuple[str, int, datetime]] = []  # (code, cost, expires_at) of every voucher
    cancelled: set[str] = set()
    await check_invariants(db, mid, model, now)
    for step, op in enumerate(operations):
        before = await entries(db, mid)
        key = f"{prefix}{step}"
        refused = False
        match op:
            case Earn(amount, days):
                async with db.transaction() as session:
                    moved = await ledger.earn(
                        session, mid, amount, "prop", key, now, expiry_days=days
                    )
                assert moved.applied and moved.amount == amount
                model.lots.append(Lot(key, now + timedelta(days=days), amount))
                earned.append((key, amount))
            case Spend(amount) | Adjust(amount) if isinstance(op, Spend) or amount < 0:
                wanted = abs(amount)
                try:
                    async with db.transaction() as session:
                        if isinstance(op, Spend):
                            moved = await ledger.spend(session, mid, wanted, "prop", key, now)
                        else:
                            moved = await ledger.adjust(
                                session, mid, -wanted, "prop", key, now, expiry_days=1
                            )
                except InsufficientPoints as exc:
                    refused = True
                    assert exc.wanted == wanted
                    assert exc.balance == model.held_at(now) < wanted
                else:
                    assert moved.amount == -wanted
                    model.expire(now)
                    model.take(wanted)
                    assert_fifo(lots_of(before), lots_of(await entries(db, mid)), now)
            case Adjust(amount):
                async with db.transaction() as session:
                    moved = await ledger.adjust(
                        session, mid, amount, "prop", key, now, expiry_days=ADJUST_EXPIRY_DAYS
                    )
                assert moved.amount == amount
                model.lots.append(Lot(key, now + timedelta(days=ADJUST_EXPIRY_DAYS), amount))
            case Refund(pick):
                if not earned:
                    continue
                lot_key, amount = earned[pick % len(earned)]
                refund_key = f"{prefix}refund:{lot_key}"
                already = any(e.key == refund_key for e in before)
                async with db.transaction() as session:
                    moved = await ledger.reverse(
                        session, mid, amount, "prop", refund_key, now, lot_key=lot_key
                    )
                assert moved.applied is not already
                if not already:
                    model.expire(now)
                    take = min(amount, model.balance())
                    assert moved.amount == -take
                    model.take(take, first=lot_key)
            case Redeem(lottery):
                cost = DRAW_COST if lottery else REDEEM_COST
                try:
                    async with db.transaction() as session:
                        done = await vouchers.redeem(
                            session,
                            mid,
                            lottery_slug if lottery else voucher_slug,
                            key,
                            now,
                            tier_ok=lambda *_: True,
                        )
                except InsufficientPoints as exc:
                    refused = True
                    assert exc.balance == model.held_at(now) < cost
                else:
                    model.expire(now)
                    model.take(cost)
                    assert done.balance == model.balance()
                    issued.append((done.voucher.code, cost, now + timedelta(days=VOUCHER_DAYS)))
                    assert_fifo(lots_of(before), lots_of(await entries(db, mid)), now)
            case Cancel(pick):
                if not issued:
                    continue
                code, cost, expires_at = issued[pick % len(issued)]
                try:
                    async with db.transaction() as session:
                        await vouchers.cancel(session, code, now, expiry_days=CANCEL_EXPIRY_DAYS)
                except vouchers.VoucherState as exc:
                    refused = True
                    assert code in cancelled or expires_at <= now
                    assert exc.state == ("cancelled" if code in cancelled else "expired")
                else:
                    assert code not in cancelled and expires_at > now
                    cancelled.add(code)
                    lot_key = f"voucher-cancel:{code}"
                    model.lots.append(Lot(lot_key, now + timedelta(days=CANCEL_EXPIRY_DAYS), cost))
            case Advance(days):
                now += timedelta(days=days)
            case Expire(days):
                now += timedelta(days=days)
                due = sum(lot.remaining for lot in model.lots if lot.expires_at <= now)
                async with db.transaction() as session:
                    assert await ledger.expire_due(session, mid, now) == due
                model.expire(now)
                rows = await entries(db, mid)
                assert not [
                    e for e in lots_of(rows).values() if e.expires_at <= now and e.remaining > 0
                ]
                assert sum(
                    e.remaining for e in lots_of(rows).values() if e.expires_at > now
                ) == await points(db, mid)
        after = await check_invariants(db, mid, model, now)
        if refused:
            assert after == before


EXAMPLES = [
    # Created late-expiring first: the spend must take the 10-day lot, then the 25-day one.
    [Earn(50, 40), Earn(30, 10), Earn(20, 25), Spend(60)],
    # The 5-day lot is due but unswept when the spend comes: refused, then partly served.
    [Earn(40, 5), Earn(40, 50), Advance(10), Spend(50), Spend(30)],
    # A refund takes from its own lot first, repeats do nothing, and expiry follows.
    [Earn(60, 30), Earn(30, 10), Refund(0), Expire(15), Adjust(-5), Refund(0), Adjust(7)],
    [Earn(10, 5), Earn(10, 10), Expire(7), Spend(11), Expire(3), Spend(1)],
    # A redemption takes the soonest lot, its cancellation opens a fresh one; a draw spends.
    [Earn(30, 5), Earn(30, 50), Redeem(False), Cancel(0), Cancel(0), Redeem(True), Spend(50)],
    # A voucher past its date cannot be cancelled: its points stay spent.
    [Earn(50, 100), Redeem(False), Advance(12), Cancel(0), Redeem(True), Redeem(False)],
]


def with_examples(test):  # type: ignore[no-untyped-def]
    for operations in EXAMPLES:
        test = example(operations=operations)(test)
    return test


COMMON = {
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "deadline": None,
}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@settings(max_examples=40, **COMMON)
@with_examples
@given(operations=OPERATIONS)
async def test_any_operation_sequence_keeps_ledger_invariants_on_sqlite(db, operations):
    await run_example(db, operations)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@settings(max_examples=25, **COMMON)
@with_examples
@given(operations=OPERATIONS)
async def test_any_operation_sequence_keeps_ledger_invariants_on_postgres(db, operations):
    await run_example(db, operations)
