"""indexes for the operators' figures (GET /api/stats, the dashboard)

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_ledger_created_kind", "ledger_entries", ["created_at", "kind", "member_id", "amount"]),
    ("ix_members_created", "members", ["created_at"]),
    ("ix_checkins_day", "checkins", ["day"]),
    ("ix_orders_created", "orders", ["created_at"]),
    ("ix_invites_created", "invites", ["created_at"]),
    ("ix_community_members_community", "community_members", ["community_id", "status"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
