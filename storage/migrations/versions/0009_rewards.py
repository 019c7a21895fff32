"""points mall: rewards, lottery prizes, vouchers; earning events; badges

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rewards",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("slug", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("cost", BIG, nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("redeemed", sa.Integer(), nullable=False),
        sa.Column("per_member_limit", sa.Integer(), nullable=True),
        sa.Column("min_tier", sa.String(length=16), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("cost > 0", name=op.f("ck_rewards_cost_positive")),
        sa.CheckConstraint(
            "stock IS NULL OR stock >= 0", name=op.f("ck_rewards_stock_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rewards")),
        sa.UniqueConstraint("slug", name=op.f("uq_rewards_slug")),
    )
    op.create_table(
        "reward_prizes",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("reward_id", BIG, nullable=False),
        sa.Column("slug", sa.String(length=32), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("won", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "stock IS NULL OR stock >= 0", name=op.f("ck_reward_prizes_stock_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_reward_prizes_reward_id_rewards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_prizes")),
        sa.UniqueConstraint("reward_id", "slug", name="uq_reward_prizes_slug"),
    )
    op.create_table(
        "vouchers",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("reward_id", BIG, nullable=False),
        sa.Column("prize_id", BIG, nullable=True),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("redemption_key", sa.String(length=160), nullable=False),
        sa.Column("cost", BIG, nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_vouchers_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["prize_id"], ["reward_prizes.id"], name=op.f("fk_vouchers_prize_id_reward_prizes")
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_vouchers_reward_id_rewards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vouchers")),
        sa.UniqueConstraint("code", name=op.f("uq_vouchers_code")),
        sa.UniqueConstraint("redemption_key", name=op.f("uq_vouchers_redemption_key")),
    )
    with op.batch_alter_table("vouchers", schema=None) as batch_op:
        batch_op.create_index("ix_vouchers_due", ["state", "expires_at"], unique=False)
        batch_op.create_index("ix_vouchers_member_reward", ["member_id", "reward_id"], unique=False)
    op.create_table(
        "earning_events",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("credited", sa.Boolean(), nullable=False),
        sa.Column("points", BIG, nullable=False),
        sa.Column("growth", BIG, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_earning_events_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_earning_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_earning_events_event_id")),
    )
    with op.batch_alter_table("earning_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_earning_events_member_day", ["member_id", "type", "day"], unique=False
        )
    op.create_table(
        "badges",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("badge", sa.String(length=32), nullable=False),
        sa.Column("earned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_badges_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_badges")),
        sa.UniqueConstraint("member_id", "badge", name="uq_badges_member_badge"),
    )


def downgrade() -> None:
    op.drop_table("badges")
    with op.batch_alter_table("earning_events", schema=None) as batch_op:
        batch_op.drop_index("ix_earning_events_member_day")
    op.drop_table("earning_events")
    with op.batch_alter_table("vouchers", schema=None) as batch_op:
        batch_op.drop_index("ix_vouchers_member_reward")
        batch_op.drop_index("ix_vouchers_due")
    op.drop_table("vouchers")
    op.drop_table("reward_prizes")
    op.drop_table("rewards")
