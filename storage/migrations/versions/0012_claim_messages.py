"""flash claims keyed by the message that claimed them

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The app's id of the message (or button press) that won the unit: a redelivery of the
    # same message answers the same claim instead of claiming again.
    op.add_column("flash_claims", sa.Column("message_key", sa.String(length=200), nullable=True))
    op.create_index("uq_flash_claims_message_key", "flash_claims", ["message_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_flash_claims_message_key", table_name="flash_claims")
    op.drop_column("flash_claims", "message_key")
