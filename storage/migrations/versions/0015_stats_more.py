"""roll-up of each member's last check-in day and last spend with their tier (kept by a
trigger on members.tier) and how many communities they are in (kept by triggers on
community_members), for the benefit figures; the check-ins' time index

Revision ID: 0015
Revises: 0014

A programme already rolled up (stats_rollups' `through` set) gets its rows here, through the
same `through`; otherwise the `stats` job builds them with the rest. The SQL is the one of
storage/stats/rollup.py at this revision (a migration must not change with the code).
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)

# The member's tier follows every change of members.tier (an upsert: a row the roll-up is
# adding at that moment is waited for, then corrected, so no change is lost).
PG_FUNCTION = """
CREATE FUNCTION stats_members_tier() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stats_members (member_id, tier) VALUES (NEW.id, NEW.tier)
    ON CONFLICT (member_id) DO UPDATE SET tier = excluded.tier;
    RETURN NULL;
END
$$
"""
PG_TRIGGER = (
    "CREATE TRIGGER stats_members_tier AFTER UPDATE OF tier ON members FOR EACH ROW"
    " WHEN (OLD.tier IS DISTINCT FROM NEW.tier) EXECUTE FUNCTION stats_members_tier()"
)
# How many communities each member is in (status 'joined'), moved by every write of a
# membership (insert, a status or member change, delete); a new row takes the member's tier.
PG_COMMUNITY_FUNCTION = """
CREATE FUNCTION stats_members_communities() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'joined' THEN
        UPDATE stats_members SET communities = communities - 1 WHERE member_id = OLD.member_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = 'joined' THEN
        INSERT INTO stats_members (member_id, tier, communities)
        SELECT id, tier, 1 FROM members WHERE id = NEW.member_id
        ON CONFLICT (member_id) DO UPDATE SET communities = stats_members.communities + 1;
    END IF;
    RETURN NULL;
END
$$
"""
PG_COMMUNITY_TRIGGER = (
    "CREATE TRIGGER stats_members_communities"
    " AFTER INSERT OR UPDATE OF status, member_id OR DELETE ON community_members"
    " FOR EACH ROW EXECUTE FUNCTION stats_members_communities()"
)
_SQLITE_LEAVE = (
    " UPDATE stats_members SET communities = communities - 1 WHERE member_id = OLD.member_id;"
)
_SQLITE_JOIN = (
    " INSERT INTO stats_members (member_id, tier, communities)"
    " SELECT id, tier, 1 FROM members WHERE id = NEW.member_id"
    " ON CONFLICT (member_id) DO UPDATE SET communities = stats_members.communities + 1;"
)
SQLITE_COMMUNITY_TRIGGERS = (
    "CREATE TRIGGER stats_members_communities_insert AFTER INSERT ON community_members"
    f" FOR EACH ROW WHEN NEW.status = 'joined' BEGIN{_SQLITE_JOIN} END",
    "CREATE TRIGGER stats_members_communities_leave"
    " AFTER UPDATE OF status, member_id ON community_members"
    f" FOR EACH ROW WHEN OLD.status = 'joined' BEGIN{_SQLITE_LEAVE} END",
    "CREATE TRIGGER stats_members_communities_join"
    " AFTER UPDATE OF status, member_id ON community_members"
    f" FOR EACH ROW WHEN NEW.status = 'joined' BEGIN{_SQLITE_JOIN} END",
    "CREATE TRIGGER stats_members_communities_delete AFTER DELETE ON community_members"
    f" FOR EACH ROW WHEN OLD.status = 'joined' BEGIN{_SQLITE_LEAVE} END",
)
SQLITE_NAMES = (
    "stats_members_communities_insert",
    "stats_members_communities_leave",
    "stats_members_communities_join",
    "stats_members_communities_delete",
)
SQLITE_TRIGGER = (
    "CREATE TRIGGER stats_members_tier AFTER UPDATE OF tier ON members FOR EACH ROW"
    " WHEN OLD.tier IS NOT NEW.tier BEGIN"
    " INSERT INTO stats_members (member_id, tier) VALUES (NEW.id, NEW.tier)"
    " ON CONFLICT (member_id) DO UPDATE SET tier = excluded.tier;"
    " END"
)


def _backfill() -> None:
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "INSERT INTO stats_members (member_id, tier, communities)"
            " SELECT m.id, m.tier, COUNT(*) FROM community_members c"
            " JOIN members m ON m.id = c.member_id"
            " WHERE c.status = 'joined' GROUP BY m.id, m.tier"
        )
    )
    through = bind.execute(
        sa.text("SELECT through FROM stats_rollups WHERE name = 'activity'")
    ).scalar()
    if through is None:
        return  # not rolled up yet: the job's first run builds these rows with the rest
    hi = "(SELECT through FROM stats_rollups WHERE name = 'activity')"
    bind.execute(
        sa.text(
            "INSERT INTO stats_members (member_id, tier, last_checkin_day)"
            " SELECT c.member_id, m.tier, MAX(c.day)"
            " FROM checkins c JOIN members m ON m.id = c.member_id"
            f" WHERE c.created_at < {hi} GROUP BY c.member_id, m.tier"
            " ON CONFLICT (member_id) DO UPDATE SET last_checkin_day = excluded.last_checkin_day"
        )
    )
    bind.execute(
        sa.text(
            "INSERT INTO stats_members (member_id, tier, last_spend_at)"
            " SELECT e.member_id, m.tier, MAX(e.created_at)"
            " FROM ledger_entries e JOIN members m ON m.id = e.member_id"
            f" WHERE e.kind = 'spend' AND e.created_at < {hi} GROUP BY e.member_id, m.tier"
            " ON CONFLICT (member_id) DO UPDATE SET last_spend_at = excluded.last_spend_at"
        )
    )


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    op.create_table(
        "stats_members",
        sa.Column("member_id", ID, nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("last_checkin_day", sa.Date(), nullable=True),
        sa.Column("last_spend_at", TIME, nullable=True),
        sa.Column("communities", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_stats_members_member_id_members")
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_stats_members")),
    )
    # Covering: the check-ins after `through` (member, day) read from the index alone.
    op.create_index("ix_checkins_created", "checkins", ["created_at", "day", "member_id"])
    if dialect == "postgresql":
        for sql in (PG_FUNCTION, PG_TRIGGER, PG_COMMUNITY_FUNCTION, PG_COMMUNITY_TRIGGER):
            op.execute(sql)
    else:
        for sql in (SQLITE_TRIGGER, *SQLITE_COMMUNITY_TRIGGERS):
            op.execute(sql)
    # Filled before its indexes exist: one build each instead of a million insertions.
    _backfill()
    op.create_index("ix_stats_members_checkin", "stats_members", ["last_checkin_day", "tier"])
    op.create_index("ix_stats_members_spend", "stats_members", ["last_spend_at", "tier"])
    op.create_index(
        "ix_stats_members_in_community",
        "stats_members",
        ["tier"],
        postgresql_where=sa.text("communities > 0"),
        sqlite_where=sa.text("communities > 0"),
    )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS stats_members_communities ON community_members")
        op.execute("DROP FUNCTION IF EXISTS stats_members_communities()")
        op.execute("DROP TRIGGER IF EXISTS stats_members_tier ON members")
        op.execute("DROP FUNCTION IF EXISTS stats_members_tier()")
    else:
        for name in (*SQLITE_NAMES, "stats_members_tier"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_stats_members_in_community", table_name="stats_members")
    op.drop_index("ix_stats_members_spend", table_name="stats_members")
    op.drop_index("ix_stats_members_checkin", table_name="stats_members")
    op.drop_index("ix_checkins_created", table_name="checkins")
    op.drop_table("stats_members")
