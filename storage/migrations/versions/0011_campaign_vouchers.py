"""campaigns: a points-mall reward given as a voucher to each recipient

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reward_id", ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_campaigns_reward_id_rewards"), "rewards", ["reward_id"], ["id"]
        )
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voucher_id", ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_campaign_recipients_voucher_id_vouchers"),
            "vouchers",
            ["voucher_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_campaign_recipients_voucher_id_vouchers"), type_="foreignkey"
        )
        batch_op.drop_column("voucher_id")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_campaigns_reward_id_rewards"), type_="foreignkey")
        batch_op.drop_column("reward_id")
