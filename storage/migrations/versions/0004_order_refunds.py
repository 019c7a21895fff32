"""order refunds (partial, each by refund id); 64-bit points, growth and their sums

Revision ID: 0004
Revises: 0003

Orders refunded before this revision get a refund row under refund id "" (the whole order),
so a repeat of that refund still changes nothing. SQLite's INTEGER is 64-bit already: only
PostgreSQL's columns change type.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WIDENED = {
    "members": ("points", "growth"),
    "ledger_entries": ("amount", "remaining"),
    "checkins": ("points",),
    "orders": ("points", "growth"),
}


def _retype(to: sa.types.TypeEngine[int], was: sa.types.TypeEngine[int]) -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table, columns in WIDENED.items():
        for column in columns:
            op.alter_column(table, column, type_=to, existing_type=was, existing_nullable=False)


def upgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer())
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "refunded_amount",
                sa.Numeric(precision=14, scale=2),
                nullable=False,
                server_default="0",
            )
        )
        batch_op.add_column(sa.Column("points_reversed", BIG, nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("growth_reversed", BIG, nullable=False, server_default="0"))
    op.execute(
        "UPDATE orders SET refunded_amount = amount, points_reversed = points, "
        "growth_reversed = growth WHERE status = 'refunded'"
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("refunded_amount", server_default=None)
        batch_op.alter_column("points_reversed", server_default=None)
        batch_op.alter_column("growth_reversed", server_default=None)
        batch_op.create_check_constraint(
            op.f("ck_orders_refund_within_amount"), "refunded_amount <= amount"
        )
        batch_op.create_check_constraint(
            op.f("ck_orders_points_reversed_within"), "points_reversed <= points"
        )
        batch_op.create_check_constraint(
            op.f("ck_orders_growth_reversed_within"), "growth_reversed <= growth"
        )
    op.create_table(
        "order_refunds",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("refund_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("points", BIG, nullable=False),
        sa.Column("growth", BIG, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.order_id"], name=op.f("fk_order_refunds_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_refunds")),
        sa.UniqueConstraint("order_id", "refund_id", name="uq_order_refunds_refund"),
    )
    op.execute(
        "INSERT INTO order_refunds (order_id, refund_id, amount, points, growth, created_at) "
        "SELECT order_id, '', amount, points, growth, COALESCE(refunded_at, created_at) "
        "FROM orders WHERE status = 'refunded'"
    )


def downgrade() -> None:
    op.drop_table("order_refunds")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_growth_reversed_within"), type_="check")
        batch_op.drop_constraint(op.f("ck_orders_points_reversed_within"), type_="check")
        batch_op.drop_constraint(op.f("ck_orders_refund_within_amount"), type_="check")
        batch_op.drop_column("growth_reversed")
        batch_op.drop_column("points_reversed")
        batch_op.drop_column("refunded_amount")
    _retype(sa.Integer(), sa.BigInteger())
