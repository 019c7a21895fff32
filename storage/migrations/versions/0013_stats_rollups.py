"""roll-ups for the operators' figures (active, churned, won back, retention; points moved
per hour); the check-ins' day index covers the member, the orders' time index the figures;
identities by app and member

Revision ID: 0013
Revises: 0012

A programme with ledger entries is rolled up here, through the start of the hour ten minutes
ago (the `stats` job carries it on hourly); an empty one is left to the job. The SQL is the
one of storage/stats/rollup.py at this revision (a migration must not change with the code).
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)
ORDER_COLUMNS = ["created_at", "status", "member_id", "amount", "refunded_amount"]


def _backfill(dialect: str) -> None:
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM ledger_entries LIMIT 1")).first() is None:
        return
    hi = (datetime.now(UTC) - timedelta(minutes=10)).replace(minute=0, second=0, microsecond=0)
    if dialect == "postgresql":
        gap, value = "x.at - x.prev > interval '23 hours'", hi
        hour = "date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    else:  # SQLite keeps naive UTC text
        gap = "julianday(x.at) - julianday(x.prev) > 23.0 / 24.0"
        value = hi.replace(tzinfo=None)
        hour = "strftime('%Y-%m-%d %H:00:00.000000', created_at)"
    params = {"hi": value}
    bind.execute(
        sa.text(
            "INSERT INTO stats_comebacks (member_id, at, quiet_since, joined_at)"
            " SELECT x.member_id, x.at, x.prev, m.created_at FROM ("
            "  SELECT e.member_id AS member_id, e.created_at AS at,"
            "   LAG(e.created_at) OVER (PARTITION BY e.member_id"
            "    ORDER BY e.created_at, e.id) AS prev"
            "  FROM ledger_entries e"
            "  WHERE e.kind IN ('earn', 'spend') AND e.created_at < :hi"
            " ) x JOIN members m ON m.id = x.member_id"
            f" WHERE x.prev IS NULL OR {gap}"
        ).bindparams(sa.bindparam("hi", type_=TIME)),
        params,
    )
    bind.execute(
        sa.text(
            "INSERT INTO stats_activity (member_id, joined_at, last_active_at)"
            " SELECT e.member_id, m.created_at, MAX(e.created_at)"
            " FROM ledger_entries e JOIN members m ON m.id = e.member_id"
            " WHERE e.kind IN ('earn', 'spend') AND e.created_at < :hi"
            " GROUP BY e.member_id, m.created_at"
        ).bindparams(sa.bindparam("hi", type_=TIME)),
        params,
    )
    bind.execute(
        sa.text(
            "INSERT INTO stats_ledger_hours (hour, kind, amount)"
            f" SELECT {hour}, kind, SUM(amount) FROM ledger_entries WHERE created_at < :hi"
            f" GROUP BY {hour}, kind"
        ).bindparams(sa.bindparam("hi", type_=TIME)),
        params,
    )
    bind.execute(
        sa.text("UPDATE stats_rollups SET through = :hi WHERE name = 'activity'").bindparams(
            sa.bindparam("hi", type_=TIME)
        ),
        params,
    )


def upgrade() -> None:
    op.create_table(
        "stats_rollups",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("through", TIME, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stats_rollups")),
    )
    op.create_table(
        "stats_activity",
        sa.Column("member_id", ID, nullable=False),
        sa.Column("joined_at", TIME, nullable=False),
        sa.Column("last_active_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_stats_activity_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_stats_activity")),
    )
    op.create_table(
        "stats_comebacks",
        sa.Column("member_id", ID, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("quiet_since", TIME, nullable=True),
        sa.Column("joined_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_stats_comebacks_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", "at", name=op.f("pk_stats_comebacks")),
    )
    op.create_table(
        "stats_ledger_hours",
        sa.Column("hour", TIME, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("amount", ID, nullable=False),
        sa.PrimaryKeyConstraint("hour", "kind", name=op.f("pk_stats_ledger_hours")),
    )
    op.execute("INSERT INTO stats_rollups (name, through) VALUES ('activity', NULL)")
    # Filled before the indexes exist: one build each instead of millions of insertions.
    _backfill(op.get_context().dialect.name)
    op.create_index("ix_stats_activity_last", "stats_activity", ["last_active_at"])
    op.create_index("ix_stats_activity_joined", "stats_activity", ["joined_at", "last_active_at"])
    op.create_index("ix_stats_comebacks_at", "stats_comebacks", ["at", "quiet_since", "joined_at"])
    # Index-only counts of the period's check-in members and of the members in each app.
    op.create_index("ix_checkins_day_member", "checkins", ["day", "member_id"])
    op.drop_index("ix_checkins_day", table_name="checkins")
    op.create_index("ix_identities_channel_member", "identities", ["channel", "member_id"])
    op.create_index("ix_orders_created_cover", "orders", ORDER_COLUMNS)
    op.drop_index("ix_orders_created", table_name="orders")


def downgrade() -> None:
    op.create_index("ix_orders_created", "orders", ["created_at"])
    op.drop_index("ix_orders_created_cover", table_name="orders")
    op.drop_index("ix_identities_channel_member", table_name="identities")
    op.create_index("ix_checkins_day", "checkins", ["day"])
    op.drop_index("ix_checkins_day_member", table_name="checkins")
    op.drop_index("ix_stats_comebacks_at", table_name="stats_comebacks")
    op.drop_index("ix_stats_activity_joined", table_name="stats_activity")
    op.drop_index("ix_stats_activity_last", table_name="stats_activity")
    op.drop_table("stats_ledger_hours")
    op.drop_table("stats_comebacks")
    op.drop_table("stats_activity")
    op.drop_table("stats_rollups")
