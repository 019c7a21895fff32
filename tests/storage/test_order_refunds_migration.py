"""Revision 0004 (order refunds) keeps what earlier refunds did: a whole refund recorded before
it becomes refund "" of its order, so repeating that refund still changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

from storage.db import Database
from storage.migrate import upgrade

BEFORE = [
    "INSERT INTO members (id, created_at, points, growth, tier, invite_code) "
    "VALUES (1, '2026-03-10 02:00:00', 20, 20, 'bronze', 'ABCDEF')",
    "INSERT INTO orders (order_id, member_id, amount, currency, status, points, growth, "
    "created_at, refunded_at) VALUES "
    "('OLD-1', 1, 80.00, 'CNY', 'refunded', 80, 80, '2026-03-09 02:00:00', '2026-03-10 01:00:00'), "
    "('OLD-2', 1, 20.00, 'CNY', 'paid', 20, 20, '2026-03-09 03:00:00', NULL)",
]


async def test_refunds_before_the_revision_become_whole_order_refunds(tmp_path: Path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await upgrade(db, "0003")
        async with db.engine.begin() as conn:
            for statement in BEFORE:
                await conn.execute(text(statement))

        await upgrade(db)

        async with db.engine.connect() as conn:
            orders = (
                await conn.execute(
                    text(
                        "SELECT order_id, status, refunded_amount, points_reversed, "
                        "growth_reversed FROM orders ORDER BY order_id"
                    )
                )
            ).all()
            refunds = (
                await conn.execute(
                    text("SELECT order_id, refund_id, amount, points, growth FROM order_refunds")
                )
            ).all()
    finally:
        await db.close()
    assert [exact(row) for row in orders] == [
        ("OLD-1", "refunded", Decimal("80"), 80, 80),
        ("OLD-2", "paid", Decimal("0"), 0, 0),
    ]
    assert [exact(row) for row in refunds] == [("OLD-1", "", Decimal(80), 80, 80)]


def exact(row: Sequence[object]) -> tuple[object, ...]:
    """(text, text, amount, points, growth) with SQLite's loose numbers made exact."""
    first, second, amount, points, growth = row
    return first, second, Decimal(str(amount)), int(str(points)), int(str(growth))
