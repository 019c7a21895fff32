"""Typed SQLAlchemy models. Invariants live in constraints; see ledger.py for how points move."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY, so BIGINT ids are INTEGER there.
Id = BigInteger().with_variant(Integer(), "sqlite")
# Points, growth and their sums: 64-bit (SQLite's INTEGER is 64-bit already).
Points = Id


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which keeps no zone) as on PG."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        moment: datetime = value.astimezone(UTC)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value
        return stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column()
    display_name: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(8))
    birthday: Mapped[str | None] = mapped_column(String(5))  # "MM-DD"
    points: Mapped[int] = mapped_column(Points, default=0)  # sum of ledger amounts, in step
    growth: Mapped[int] = mapped_column(Points, default=0)
    tier: Mapped[str] = mapped_column(String(16), default="bronze")
    invite_code: Mapped[str] = mapped_column(String(12), unique=True)
    merged_into_id: Mapped[int | None] = mapped_column(Id, ForeignKey("members.id"))
    muted_at: Mapped[datetime | None] = mapped_column()  # set: no marketing pushes (/mute)

    __table_args__ = (
        CheckConstraint("points >= 0", name="points_not_negative"),
        CheckConstraint("growth >= 0", name="growth_not_negative"),
    )


class Identity(Base):
    """One account in one app; (channel, external_id) belongs to exactly one member."""

    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column()
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    # The app's last refusal to deliver to this person (e.g. WeChat 45015, Telegram Forbidden).
    send_error: Mapped[str | None] = mapped_column(String(64))
    send_error_at: Mapped[datetime | None] = mapped_column()
    # When the person first wrote to the bot in a private chat (None: never, as far as known):
    # before that Telegram refuses the bot's messages, so a group press gets a deep link.
    private_chat_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identities_channel_ext"),)


class LedgerEntry(Base):
    """Append-only points movement; earn lots carry `remaining` and `expires_at` for FIFO."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(8))  # earn, spend, expire, adjust, reverse
    amount: Mapped[int] = mapped_column(Points)
    reason: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    remaining: Mapped[int] = mapped_column(Points, default=0)

    __table_args__ = (
        CheckConstraint("remaining >= 0", name="remaining_not_negative"),
        Index("ix_ledger_member_created", "member_id", "created_at"),
        Index("ix_ledger_open_lots", "member_id", "expires_at"),
    )


class Checkin(Base):
    __tablename__ = "checkins"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"))
    day: Mapped[date] = mapped_column(Date)
    streak: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Points)
    created_at: Mapped[datetime] = mapped_column()

    __table_args__ = (UniqueConstraint("member_id", "day", name="uq_checkins_member_day"),)


class Order(Base):
    """A shop order: what it credited, and how much of it was refunded and taken back."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))  # paid, refunded (whole amount)
    points: Mapped[int] = mapped_column(Points, default=0)
    growth: Mapped[int] = mapped_column(Points, default=0)
    created_at: Mapped[datetime] = mapped_column()
    refunded_at: Mapped[datetime | None] = mapped_column()
    refunded_amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=0)
    points_reversed: Mapped[int] = mapped_column(Points, default=0)
    growth_reversed: Mapped[int] = mapped_column(Points, default=0)

    __table_args__ = (
        CheckConstraint("refunded_amount <= amount", name="refund_within_amount"),
        CheckConstraint("points_reversed <= points", name="points_reversed_within"),
        CheckConstraint("growth_reversed <= growth", name="growth_reversed_within"),
    )


class OrderRefund(Base):
    """One refund of an order, unique by the shop's refund id ("" for the whole order)."""

    __tablename__ = "order_refunds"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(64), ForeignKey("orders.order_id"))
    refund_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    points: Mapped[int] = mapped_column(Points, default=0)  # the share of points taken back
    growth: Mapped[int] = mapped_column(Points, default=0)
    created_at: Mapped[datetime] = mapped_column()

    __table_args__ = (UniqueConstraint("order_id", "refund_id", name="uq_order_refunds_refund"),)


class LinkCode(Base):
    """A one-time 6-digit code that lets a member prove they own an account in another app."""

    __tablename__ = "link_codes"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column()


class Invite(Base):
    """Who brought whom: one row per invitee, ever (the unique key is the "attributed once").

    status: waiting (for the invitee's first check-in), review (past the inviter's daily cap,
    for a moderator), rewarded, rejected, void (the two turned out to be one person).
    """

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    inviter_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"))
    invitee_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"), unique=True)
    via: Mapped[str] = mapped_column(String(16))  # telegram, wechat, code
    status: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column()
    reward_day: Mapped[date | None] = mapped_column(Date)  # the inviter's day it counted in

    __table_args__ = (Index("ix_invites_inviter_day", "inviter_id", "reward_day"),)


class Community(Base):
    """An interest group, gated by tier, with a Telegram group and/or a WeChat group QR."""

    __tablename__ = "communities"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    names: Mapped[dict[str, str]] = mapped_column(JSON)  # locale -> name
    tag: Mapped[str] = mapped_column(String(32), default="")
    min_tier: Mapped[str] = mapped_column(String(16), default="bronze")
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    wechat_qr: Mapped[str | None] = mapped_column(String(512))  # group QR image URL or link
    description: Mapped[str] = mapped_column(String(500), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column()


class CommunityMember(Base):
    __tablename__ = "community_members"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    community_id: Mapped[int] = mapped_column(Id, ForeignKey("communities.id"))
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"), index=True)
    status: Mapped[str] = mapped_column(String(8))  # joined, left
    via: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column()
    left_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("community_id", "member_id", name="uq_community_members_pair"),
    )


class GroupInviteLink(Base):
    """A one-person Telegram invite link made for one member, so a join tells who it was."""

    __tablename__ = "group_invite_links"

    link: Mapped[str] = mapped_column(String(255), primary_key=True)
    community_id: Mapped[int] = mapped_column(Id, ForeignKey("communities.id"))
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"), index=True)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Role(Base):
    """admin and staff everywhere (community_id 0), moderator of one community."""

    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    community_id: Mapped[int] = mapped_column(Id, default=0)  # 0: not tied to one community
    granted_at: Mapped[datetime] = mapped_column()

    __table_args__ = (UniqueConstraint("member_id", "role", "community_id", name="uq_roles_grant"),)


class OutboxPush(Base):
    """One push the bot makes on its own, written in the same transaction as its cause.

    state: pending (due at `next_attempt_at`; `leased_until` set while a sender has it), held
    (WeChat's window is closed: waits until the person writes again, until `hold_until`), sent,
    failed (`last_error` says why). `mode`: send (a person's private chat), post (a group
    chat), edit (the message an earlier row, `edit_of`, sent).
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(128))
    member_id: Mapped[int | None] = mapped_column(Id, ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))
    edit_of: Mapped[int | None] = mapped_column(Id, ForeignKey("outbox.id"))
    marketing: Mapped[bool] = mapped_column(Boolean, default=False)  # muting applies
    quiet: Mapped[bool] = mapped_column(Boolean, default=False)  # waits out quiet hours
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # Reply.to_json()
    state: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    leased_until: Mapped[datetime | None] = mapped_column()
    hold_until: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        Index("ix_outbox_chat", "channel", "chat_id", "state"),
        Index("ix_outbox_member_kind", "member_id", "kind", "created_at"),
        Index("ix_outbox_edit_of", "edit_of"),
    )


class JobRun(Base):
    """A scheduled job's claim on one period: the primary key lets one process run it."""

    __tablename__ = "job_runs"

    job: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    done: Mapped[int | None] = mapped_column(Integer)  # how many things the run did
    error: Mapped[str | None] = mapped_column(String(200))


class TierReview(Base):
    """A member's yearly tier review: the growth they earned since the previous one decides
    whether they keep their tier; `growth_at` is the base the next review counts from."""

    __tablename__ = "tier_reviews"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"))
    period_start: Mapped[datetime] = mapped_column()
    reviewed_at: Mapped[datetime] = mapped_column()
    growth_at: Mapped[int] = mapped_column(Integer)
    earned: Mapped[int] = mapped_column(Integer)
    tier_before: Mapped[str] = mapped_column(String(16))
    tier_after: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        UniqueConstraint("member_id", "period_start", name="uq_tier_reviews_member_period"),
    )


# Indexes for the operators' figures (storage/stats): each scans one period by time.
# member_id and amount too: who was active and the points moved come from the index alone.
Index(
    "ix_ledger_created_kind",
    LedgerEntry.created_at,
    LedgerEntry.kind,
    LedgerEntry.member_id,
    LedgerEntry.amount,
)
Index("ix_members_created", Member.created_at)
# (day, member): the period's check-in members without reading the rows (stats_rollups).
Index("ix_checkins_day_member", Checkin.day, Checkin.member_id)
# The check-ins of an hour, covering: the stats roll-up's last check-in day per member, and
# the check-in members after its `through`, read from the index alone (migration 0015).
Index("ix_checkins_created", Checkin.created_at, Checkin.day, Checkin.member_id)
Index("ix_identities_channel_member", Identity.channel, Identity.member_id)
# Covering: the period's orders figures read the index alone (stats_rollups).
Index(
    "ix_orders_created_cover",
    Order.created_at,
    Order.status,
    Order.member_id,
    Order.amount,
    Order.refunded_amount,
)
Index("ix_invites_created", Invite.created_at)
Index("ix_community_members_community", CommunityMember.community_id, CommunityMember.status)


class Campaign(Base):
    """A message to a segment of members, now or at `send_at`, through the outbox.

    state: scheduled (waits for `send_at`), sending (recipients being queued; a run that
    stopped half way is taken up again, each member once), sent (everyone queued).
    `segment` holds the filters (tier, community, channel, dormant_days, birthday_month,
    top_spend_percent), all of which a member must match; `texts` is locale -> text.
    """

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    segment: Mapped[dict[str, Any]] = mapped_column(JSON)
    texts: Mapped[dict[str, str]] = mapped_column(JSON)
    reward_points: Mapped[int] = mapped_column(Points, default=0)  # credited to each recipient
    # A points-mall reward given as a voucher to each recipient (None: no voucher).
    reward_id: Mapped[int | None] = mapped_column(Id, ForeignKey("rewards.id"))
    state: Mapped[str] = mapped_column(String(16))
    send_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_campaigns_due", "state", "send_at"),)


class CampaignRecipient(Base):
    """One member of a campaign's segment, once: queued (`outbox_id`), muted or unreachable;
    `voucher_id` is the campaign's gift voucher they were given with their push."""

    __tablename__ = "campaign_recipients"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(Id, ForeignKey("campaigns.id"))
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # queued, muted, unreachable
    outbox_id: Mapped[int | None] = mapped_column(Id, ForeignKey("outbox.id"))
    voucher_id: Mapped[int | None] = mapped_column(Id, ForeignKey("vouchers.id"))
    created_at: Mapped[datetime] = mapped_column()

    __table_args__ = (
        UniqueConstraint("campaign_id", "member_id", name="uq_campaign_recipients_pair"),
    )


class Ticket(Base):
    """A complaint: its number is `C-` and the zero-padded id. Deadlines are stored as
    instants (`warn_at`, `first_response_due`) and moved later while the ticket waits on
    the member, so the deadline job compares columns with now and nothing else."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"))
    category: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(10))  # open assigned waiting resolved closed
    assignee_id: Mapped[int | None] = mapped_column(Id, ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column()
    warn_at: Mapped[datetime] = mapped_column()
    first_response_due: Mapped[datetime] = mapped_column()
    first_response_at: Mapped[datetime | None] = mapped_column()
    waiting_since: Mapped[datetime | None] = mapped_column()
    warned_at: Mapped[datetime | None] = mapped_column()
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    escalated_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    score: Mapped[int | None] = mapped_column(Integer)
    scored_handler_id: Mapped[int | None] = mapped_column(Id, ForeignKey("members.id"))
    refers_to_id: Mapped[int | None] = mapped_column(Id, ForeignKey("tickets.id"))

    __table_args__ = (
        CheckConstraint("score IS NULL OR (score >= 1 AND score <= 5)", name="score_1_to_5"),
        Index("ix_tickets_member", "member_id", "created_at"),
        Index("ix_tickets_state_due", "state", "first_response_due"),
    )


class TicketMessage(Base):
    """What the member and the staff said on a ticket, in order."""

    __tablename__ = "ticket_messages"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(Id, ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column()
    sender: Mapped[str] = mapped_column(String(8))  # member, staff
    author_id: Mapped[int | None] = mapped_column(Id, ForeignKey("members.id"))
    author: Mapped[str] = mapped_column(String(64))  # the name kept (API callers give `by`)
    text: Mapped[str] = mapped_column(String(4000))
    photo: Mapped[str | None] = mapped_column(String(256))  # the app's file id (Telegram)


class TicketEvent(Base):
    """The audit trail: who did what to a ticket, when; never changed or deleted."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(Id, ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(200))


class Reward(Base):
    """An item of the points mall: a voucher for `cost` points, or a lottery draw (`kind`).

    `stock` is what is left (NULL: unlimited); a redemption takes one with a conditional
    UPDATE, a cancelled voucher gives it back, so `stock >= 0` holds under any load.
    """

    __tablename__ = "rewards"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(8), default="voucher")  # voucher, lottery
    names: Mapped[dict[str, str]] = mapped_column(JSON)  # locale -> name
    cost: Mapped[int] = mapped_column(Points)
    stock: Mapped[int | None] = mapped_column(Integer)
    redeemed: Mapped[int] = mapped_column(Integer, default=0)
    per_member_limit: Mapped[int | None] = mapped_column(Integer)
    min_tier: Mapped[str] = mapped_column(String(16), default="bronze")
    valid_days: Mapped[int] = mapped_column(Integer, default=30)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column()

    __table_args__ = (
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
        CheckConstraint("cost > 0", name="cost_positive"),
    )


class RewardPrize(Base):
    """One prize of a lottery reward, drawn by `weight` among the prizes still in stock."""

    __tablename__ = "reward_prizes"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    reward_id: Mapped[int] = mapped_column(Id, ForeignKey("rewards.id"))
    slug: Mapped[str] = mapped_column(String(32))
    names: Mapped[dict[str, str]] = mapped_column(JSON)
    weight: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int | None] = mapped_column(Integer)
    won: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        UniqueConstraint("reward_id", "slug", name="uq_reward_prizes_slug"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
    )


class Voucher(Base):
    """What a redemption or a draw gives: a code the till checks and uses once.

    state: issued, used, expired, cancelled. `redemption_key` makes one confirmation give
    one voucher however often it arrives; `cost` is what a cancellation gives back.
    """

    __tablename__ = "vouchers"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    reward_id: Mapped[int] = mapped_column(Id, ForeignKey("rewards.id"))
    prize_id: Mapped[int | None] = mapped_column(Id, ForeignKey("reward_prizes.id"))
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"))
    redemption_key: Mapped[str] = mapped_column(String(160), unique=True)
    cost: Mapped[int] = mapped_column(Points)
    state: Mapped[str] = mapped_column(String(10), default="issued")
    issued_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    cancelled_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_vouchers_member_reward", "member_id", "reward_id"),
        Index("ix_vouchers_due", "state", "expires_at"),
    )


class EarningEvent(Base):
    """A deed the shop reported (a review, a share), once per `event_id`; `credited` False
    when the member had reached the day's cap for its type."""

    __tablename__ = "earning_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"))
    type: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date)
    credited: Mapped[bool] = mapped_column(Boolean, default=False)
    points: Mapped[int] = mapped_column(Points, default=0)
    growth: Mapped[int] = mapped_column(Points, default=0)
    created_at: Mapped[datetime] = mapped_column()

    __table_args__ = (Index("ix_earning_events_member_day", "member_id", "type", "day"),)


class Badge(Base):
    """A badge a member earned, once (the unique pair), with when."""

    __tablename__ = "badges"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"))
    badge: Mapped[str] = mapped_column(String(32))
    earned_at: Mapped[datetime] = mapped_column()

    __table_args__ = (UniqueConstraint("member_id", "badge", name="uq_badges_member_badge"),)


class FlashSale(Base):
    """A community's flash sale: `claimed` only moves by a conditional UPDATE (claimed < stock).

    state: scheduled, live, ended, cancelled. `announce_id` is the outbox row of the group
    announcement whose counter claims edit; `unreached` counts WeChat members the start could
    not tell (outside their window); `sold_out_at` is set by the claim that took the last unit.
    """

    __tablename__ = "flash_sales"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(6), unique=True)
    community_id: Mapped[int] = mapped_column(Id, ForeignKey("communities.id"), index=True)
    title: Mapped[str] = mapped_column(String(64))
    price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    stock: Mapped[int] = mapped_column(Integer)
    claimed: Mapped[int] = mapped_column(Integer, default=0)
    per_member_limit: Mapped[int] = mapped_column(Integer, default=1)
    min_tier: Mapped[str | None] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    state: Mapped[str] = mapped_column(String(10))
    created_by: Mapped[int | None] = mapped_column(Id, ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column()
    announce_id: Mapped[int | None] = mapped_column(Id)
    unreached: Mapped[int] = mapped_column(Integer, default=0)
    sold_out_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        CheckConstraint("claimed >= 0 AND claimed <= stock", name="claimed_within_stock"),
        Index("ix_flash_sales_state_starts", "state", "starts_at"),
    )


class FlashClaim(Base):
    """One unit won: (sale, member, unit) is unique and unit <= the sale's limit, so a member
    never holds more than the limit, whatever arrives at once."""

    __tablename__ = "flash_claims"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    claim_code: Mapped[str] = mapped_column(String(10), unique=True)
    sale_id: Mapped[int] = mapped_column(Id, ForeignKey("flash_sales.id"))
    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"), index=True)
    unit: Mapped[int] = mapped_column(Integer)
    claimed_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    # "<channel>:<the app's message id>" of the message that won it: a redelivery of that
    # message (WeChat's retry, Telegram's redelivered update) answers this claim again.
    message_key: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("sale_id", "member_id", "unit", name="uq_flash_claims_unit"),
        Index("uq_flash_claims_message_key", "message_key", unique=True),
    )


class StatsRollup(Base):
    """How far a roll-up of the operators' figures reaches: every ledger entry created before
    `through` is in it (None: not built yet, the figures read the ledger alone)."""

    __tablename__ = "stats_rollups"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    through: Mapped[datetime | None] = mapped_column()


class StatsActivity(Base):
    """Per member who ever acted (earned or spent), as of the roll-up's `through`: their last
    activity, and when they joined (members' join time never changes). Linked-away shells
    have no row."""

    __tablename__ = "stats_activity"

    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"), primary_key=True)
    joined_at: Mapped[datetime] = mapped_column()
    last_active_at: Mapped[datetime] = mapped_column()

    __table_args__ = (
        Index("ix_stats_activity_last", "last_active_at"),
        Index("ix_stats_activity_joined", "joined_at", "last_active_at"),
    )


class StatsComeback(Base):
    """A member's activity after a quiet spell of more than 23 hours (or their first ever),
    before the roll-up's `through`: `quiet_since` the activity before it (None: none).
    "Won back" in a period is one such row per member (see storage/stats/activity.py)."""

    __tablename__ = "stats_comebacks"

    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"), primary_key=True)
    at: Mapped[datetime] = mapped_column(primary_key=True)
    quiet_since: Mapped[datetime | None] = mapped_column()
    joined_at: Mapped[datetime] = mapped_column()

    __table_args__ = (Index("ix_stats_comebacks_at", "at", "quiet_since", "joined_at"),)


class StatsLedgerHour(Base):
    """Points moved in one UTC hour by kind of ledger entry, before the roll-up's `through`."""

    __tablename__ = "stats_ledger_hours"

    hour: Mapped[datetime] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    amount: Mapped[int] = mapped_column(Points)


class StatsMember(Base):
    """Per member, as of the roll-up's `through`: the last check-in day and the last spend of
    points (None: none); and, always current, the member's tier (a trigger on members.tier;
    the roll-up copies the tier when it adds a row) and how many communities they are in
    (triggers on community_members; migration 0015). The benefit
    figures count a period's check-in members and spenders per tier from these rows' indexes
    instead of joining the period's members with every member for their tier."""

    __tablename__ = "stats_members"

    member_id: Mapped[int] = mapped_column(Id, ForeignKey("members.id"), primary_key=True)
    tier: Mapped[str] = mapped_column(String(16))
    last_checkin_day: Mapped[date | None] = mapped_column(Date)
    last_spend_at: Mapped[datetime | None] = mapped_column()
    # Communities the member is in now (memberships 'joined'), kept by triggers on
    # community_members whoever writes them.
    communities: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        Index("ix_stats_members_checkin", "last_checkin_day", "tier"),
        Index("ix_stats_members_spend", "last_spend_at", "tier"),
        Index(
            "ix_stats_members_in_community",
            "tier",
            postgresql_where=text("communities > 0"),
            sqlite_where=text("communities > 0"),
        ),
    )
