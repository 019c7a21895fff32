"""invites, communities, roles

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "communities",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("slug", sa.String(length=32), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("tag", sa.String(length=32), nullable=False),
        sa.Column("min_tier", sa.String(length=16), nullable=False),
        sa.Column("telegram_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("wechat_qr", sa.String(length=512), nullable=True),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_communities")),
        sa.UniqueConstraint("slug", name=op.f("uq_communities_slug")),
        sa.UniqueConstraint("telegram_chat_id", name=op.f("uq_communities_telegram_chat_id")),
    )
    op.create_table(
        "community_members",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_community_members_community_id_communities"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_community_members_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_members")),
        sa.UniqueConstraint("community_id", "member_id", name="uq_community_members_pair"),
    )
    with op.batch_alter_table("community_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_members_member_id"), ["member_id"], unique=False
        )

    op.create_table(
        "group_invite_links",
        sa.Column("link", sa.String(length=255), nullable=False),
        sa.Column(
            "community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_group_invite_links_community_id_communities"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_group_invite_links_member_id_members")
        ),
        sa.PrimaryKeyConstraint("link", name=op.f("pk_group_invite_links")),
    )
    with op.batch_alter_table("group_invite_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_group_invite_links_member_id"), ["member_id"], unique=False
        )

    op.create_table(
        "invites",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "inviter_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "invitee_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reward_day", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["invitee_id"], ["members.id"], name=op.f("fk_invites_invitee_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["inviter_id"], ["members.id"], name=op.f("fk_invites_inviter_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invites")),
        sa.UniqueConstraint("invitee_id", name=op.f("uq_invites_invitee_id")),
    )
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.create_index("ix_invites_inviter_day", ["inviter_id", "reward_day"], unique=False)

    op.create_table(
        "roles",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column(
            "community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_roles_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roles")),
        sa.UniqueConstraint("member_id", "role", "community_id", name="uq_roles_grant"),
    )
    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_roles_member_id"), ["member_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("roles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_roles_member_id"))

    op.drop_table("roles")
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.drop_index("ix_invites_inviter_day")

    op.drop_table("invites")
    with op.batch_alter_table("group_invite_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_invite_links_member_id"))

    op.drop_table("group_invite_links")
    with op.batch_alter_table("community_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_members_member_id"))

    op.drop_table("community_members")
    op.drop_table("communities")
