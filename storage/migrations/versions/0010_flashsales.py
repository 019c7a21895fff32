"""flash sales and claims

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flash_sales",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column(
            "community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("title", sa.String(length=64), nullable=False),
        sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.Column("per_member_limit", sa.Integer(), nullable=False),
        sa.Column("min_tier", sa.String(length=16), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column(
            "created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "announce_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("unreached", sa.Integer(), nullable=False),
        sa.Column("sold_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "claimed >= 0 AND claimed <= stock", name=op.f("ck_flash_sales_claimed_within_stock")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_flash_sales_community_id_communities"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["members.id"], name=op.f("fk_flash_sales_created_by_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flash_sales")),
        sa.UniqueConstraint("code", name=op.f("uq_flash_sales_code")),
    )
    with op.batch_alter_table("flash_sales", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_flash_sales_community_id"), ["community_id"], unique=False
        )
        batch_op.create_index("ix_flash_sales_state_starts", ["state", "starts_at"], unique=False)

    op.create_table(
        "flash_claims",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("claim_code", sa.String(length=10), nullable=False),
        sa.Column("sale_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("unit", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_flash_claims_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["sale_id"], ["flash_sales.id"], name=op.f("fk_flash_claims_sale_id_flash_sales")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flash_claims")),
        sa.UniqueConstraint("claim_code", name=op.f("uq_flash_claims_claim_code")),
        sa.UniqueConstraint("sale_id", "member_id", "unit", name="uq_flash_claims_unit"),
    )
    with op.batch_alter_table("flash_claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flash_claims_member_id"), ["member_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("flash_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flash_claims_member_id"))

    op.drop_table("flash_claims")
    with op.batch_alter_table("flash_sales", schema=None) as batch_op:
        batch_op.drop_index("ix_flash_sales_state_starts")
        batch_op.drop_index(batch_op.f("ix_flash_sales_community_id"))

    op.drop_table("flash_sales")
