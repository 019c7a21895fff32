"""identities: when the person first wrote to the bot in a private chat

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Left empty for existing accounts: not known, so a group press sends them the deep link
    # (which shows the codes they hold) until they next write privately.
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("private_chat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_column("private_chat_at")
