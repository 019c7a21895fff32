"""Flash sales and their claims; `claim` is the one claim engine every door uses.

A claim is two atomic steps in one transaction, and neither reads before it writes:
a unique row (sale, member, unit) with unit <= the sale's limit, so a member never holds more
than the limit; then `UPDATE ... SET claimed = claimed + 1 WHERE claimed < stock` and the
window, so the sale never gives more than its stock. Either refusing rolls both back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Table, case, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database, insert_ignoring, rowcount
from storage.errors import MemberMerged
from storage.models import (
    Community,
    CommunityMember,
    FlashClaim,
    FlashSale,
    Identity,
    Member,
    OutboxPush,
    UTCDateTime,
)

SCHEDULED, LIVE, ENDED, CANCELLED = "scheduled", "live", "ended", "cancelled"
STATES = (SCHEDULED, LIVE, ENDED, CANCELLED)
OPEN = (SCHEDULED, LIVE)
# No 0/O, 1/I/L: codes are read aloud at the till and typed from a phone.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
SALE_CODE_LENGTH, CLAIM_CODE_LENGTH = 6, 10

# Why a claim was refused (after the sale was found).
SOLD_OUT, NOT_STARTED, CLOSED, LIMIT = "sold_out", "not_started", "closed", "limit"
NOT_MEMBER = "not_member"

_claims: Table = FlashClaim.__table__  # type: ignore[assignment]
# Any conflict: the member's unit (try the next), or the message's key (a redelivery).
_INSERT_CLAIM = insert_ignoring(
    _claims,
    ("claim_code", "sale_id", "member_id", "unit", "claimed_at", "message_key"),
    (),
    "id",
)


def new_code(length: int) -> str:
    # One draw, written in the alphabet's base (every claim draws one: ten draws cost more).
    n = secrets.randbelow(len(CODE_ALPHABET) ** length)
    digits = []
    for _ in range(length):
        n, digit = divmod(n, len(CODE_ALPHABET))
        digits.append(CODE_ALPHABET[digit])
    return "".join(digits)


def normalise_code(raw: str) -> str:
    return raw.strip().upper()


@dataclass(frozen=True)
class NewSale:
    community_id: int
    title: str
    price: Decimal
    stock: int
    per_member_limit: int
    min_tier: str | None
    starts_at: datetime
    ends_at: datetime
    created_by: int | None = None


async def create(db: Database, sale: NewSale, now: datetime) -> FlashSale:
    """Store a scheduled sale under a fresh code (a code taken meanwhile: another one)."""
    for _ in range(5):
        try:
            async with db.transaction() as session:
                row = FlashSale(
                    code=new_code(SALE_CODE_LENGTH),
                    community_id=sale.community_id,
                    title=sale.title,
                    price=sale.price,
                    stock=sale.stock,
                    claimed=0,
                    per_member_limit=sale.per_member_limit,
                    min_tier=sale.min_tier,
                    starts_at=sale.starts_at,
                    ends_at=sale.ends_at,
                    state=SCHEDULED,
                    created_by=sale.created_by,
                    created_at=now,
                    unreached=0,
                )
                session.add(row)
                await session.flush()
                return row
        except IntegrityError:
            continue
    raise RuntimeError("no free flash-sale code after 5 tries")


async def by_code(session: AsyncSession, code: str) -> FlashSale | None:
    code = normalise_code(code)
    if len(code) != SALE_CODE_LENGTH or not code.isalnum() or not code.isascii():
        return None
    stmt = select(FlashSale).where(FlashSale.code == code)
    return (await session.execute(stmt)).scalar_one_or_none()


async def with_community(session: AsyncSession, code: str) -> tuple[FlashSale, Community] | None:
    """The sale and its community: one round trip, once per process and sale (the engine
    keeps them; see handlers/flashsale_engine.py)."""
    code = normalise_code(code)
    if len(code) != SALE_CODE_LENGTH or not code.isalnum() or not code.isascii():
        return None
    stmt = (
        select(FlashSale, Community)
        .join(Community, Community.id == FlashSale.community_id)
        .where(FlashSale.code == code)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def is_member(session: AsyncSession, community_id: int, member_id: int) -> bool:
    stmt = select(CommunityMember.id).where(
        CommunityMember.community_id == community_id,
        CommunityMember.member_id == member_id,
        CommunityMember.status == "joined",
    )
    return (await session.execute(stmt.limit(1))).first() is not None


async def listing(session: AsyncSession, state: str | None = None) -> list[FlashSale]:
    stmt = select(FlashSale).order_by(FlashSale.starts_at.desc(), FlashSale.id.desc())
    if state is not None:
        stmt = stmt.where(FlashSale.state == state)
    return list((await session.execute(stmt)).scalars())


@dataclass(frozen=True)
class Won:
    claim_code: str
    unit: int
    claimed: int  # the sale's claimed count after this claim
    sold_out: bool
    announced: bool = False  # the sale has a group post (whose counter the claim moves)


class Refused(Exception):
    """`held`: whether the member holds a unit of the sale already (None: not known), that is
    whether this may be a redelivery of the message that won it."""

    def __init__(self, reason: str, held: bool | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.held = True if reason == LIMIT else held


class Again(Exception):
    """The message that claims won a unit already (a redelivery): its claim code."""

    def __init__(self, claim_code: str) -> None:
        super().__init__(claim_code)
        self.claim_code = claim_code


async def claim(
    session: AsyncSession,
    sale: FlashSale,
    member_id: int,
    now: datetime,
    opens_at: datetime,
    code: str | None = None,
    message_key: str | None = None,
) -> Won:
    """Take one unit for the member inside the caller's transaction; `Refused` otherwise
    (the caller lets it roll the transaction back). `opens_at`: when this member may claim
    (the start, earlier for tiers with early access); `code`: the claim code, when the caller
    drew it already (the Redis fast path marks the unit in flight with it); `message_key`:
    the claiming message's, unique among claims (`Again` when it won a unit already)."""
    if now < opens_at:
        raise Refused(NOT_STARTED)
    held = await session.execute(
        select(func.count())
        .select_from(FlashClaim)
        .where(FlashClaim.sale_id == sale.id, FlashClaim.member_id == member_id)
    )
    # The count only picks the first unit to try: the unique row decides who gets it.
    unit = int(held.scalar_one()) + 1
    while True:
        if unit > sale.per_member_limit:
            raise Refused(LIMIT)
        code = code or new_code(CLAIM_CODE_LENGTH)
        params = {
            "claim_code": code,
            "sale_id": sale.id,
            "member_id": member_id,
            "unit": unit,
            "claimed_at": now,
            "message_key": message_key,
        }
        if (await session.execute(_INSERT_CLAIM, params)).scalar_one_or_none() is not None:
            break
        if message_key is not None:
            won = await session.execute(
                select(FlashClaim.claim_code).where(
                    FlashClaim.message_key == message_key,
                    # Only this member's unit of this sale is theirs to answer again.
                    FlashClaim.sale_id == sale.id,
                    FlashClaim.member_id == member_id,
                )
            )
            earlier = won.scalar_one_or_none()
            if earlier is not None:
                raise Again(earlier)
        unit += 1
    if await _merged_away(session, member_id):
        raise MemberMerged(member_id)
    taken = await session.execute(
        update(FlashSale)
        .where(
            FlashSale.id == sale.id,
            FlashSale.claimed < FlashSale.stock,
            FlashSale.state.in_(OPEN),
            FlashSale.ends_at > now,
        )
        .values(
            claimed=FlashSale.claimed + 1,
            # Typed, so the moment is stored in UTC like every other column of it.
            sold_out_at=case(
                (FlashSale.claimed + 1 >= FlashSale.stock, literal(now, UTCDateTime())),
                else_=FlashSale.sold_out_at,
            ),
        )
        .returning(FlashSale.claimed, FlashSale.stock, FlashSale.announce_id)
    )
    row = taken.first()
    if row is None:
        current = await session.execute(
            select(FlashSale.state, FlashSale.claimed, FlashSale.stock, FlashSale.ends_at).where(
                FlashSale.id == sale.id
            )
        )
        state, claimed, stock, ends_at = current.one()
        if claimed < stock and (state not in OPEN or ends_at <= now):
            raise Refused(CLOSED)
        raise Refused(SOLD_OUT)
    claimed, stock = int(row[0]), int(row[1])
    return Won(code, unit, claimed, claimed >= stock, row[2] is not None)


async def _merged_away(session: AsyncSession, member_id: int) -> bool:
    """Read after the claim row is written: a merge (/link) folding this member away locks its
    row first, so the row's foreign-key check waited for that merge to commit, and this fresh
    read sees it (the claim rolls back and runs again as the survivor). A merge locking later
    waits for this claim instead, and moves its row."""
    found = await session.execute(select(Member.merged_into_id).where(Member.id == member_id))
    return found.scalar_one_or_none() is not None


async def cancel(session: AsyncSession, sale_id: int, now: datetime) -> bool:
    """Cancel a sale not ended yet; claims already won stay valid."""
    done = await session.execute(
        update(FlashSale)
        .where(FlashSale.id == sale_id, FlashSale.state.in_(OPEN))
        .values(state=CANCELLED, ended_at=now)
    )
    return rowcount(done) == 1


async def due_to_start(session: AsyncSession, now: datetime) -> list[int]:
    stmt = select(FlashSale.id).where(FlashSale.state == SCHEDULED, FlashSale.starts_at <= now)
    return list((await session.execute(stmt)).scalars())


async def due_to_end(session: AsyncSession, now: datetime) -> list[int]:
    stmt = select(FlashSale.id).where(
        FlashSale.state.in_(OPEN),
        (FlashSale.ends_at <= now) | (FlashSale.claimed >= FlashSale.stock),
    )
    return list((await session.execute(stmt)).scalars())


async def go_live(session: AsyncSession, sale_id: int) -> FlashSale | None:
    """scheduled -> live; None when another process did it (or it was cancelled)."""
    done = await session.execute(
        update(FlashSale)
        .where(FlashSale.id == sale_id, FlashSale.state == SCHEDULED)
        .values(state=LIVE)
    )
    return await session.get(FlashSale, sale_id) if rowcount(done) == 1 else None


async def close(session: AsyncSession, sale_id: int, now: datetime) -> FlashSale | None:
    """scheduled/live -> ended; None when it was closed already (the summary goes once)."""
    done = await session.execute(
        update(FlashSale)
        .where(FlashSale.id == sale_id, FlashSale.state.in_(OPEN))
        .values(state=ENDED, ended_at=now)
    )
    if rowcount(done) != 1:
        return None
    sale = await session.get(FlashSale, sale_id)
    if sale is not None:
        await session.refresh(sale)
    return sale


async def set_announcement(
    session: AsyncSession, sale_id: int, announce_id: int | None, unreached: int
) -> None:
    await session.execute(
        update(FlashSale)
        .where(FlashSale.id == sale_id)
        .values(announce_id=announce_id, unreached=unreached)
    )


async def wechat_members(session: AsyncSession, community_id: int) -> list[int]:
    """Members of the community with a WeChat account: those the start tells there."""
    stmt = (
        select(CommunityMember.member_id)
        .join(Identity, Identity.member_id == CommunityMember.member_id)
        .where(
            CommunityMember.community_id == community_id,
            CommunityMember.status == "joined",
            Identity.channel == "wechat",
        )
        .distinct()
        .order_by(CommunityMember.member_id)
    )
    return list((await session.execute(stmt)).scalars())


async def pushes_not_delivered(session: AsyncSession, sale_id: int) -> int:
    """The start's WeChat pushes still held (window closed) or failed."""
    stmt = select(func.count()).where(
        OutboxPush.dedupe_key.like(f"{push_prefix(sale_id)}%"),
        OutboxPush.state.in_(("held", "failed")),
    )
    return int((await session.execute(stmt)).scalar_one())


async def put_off_push(session: AsyncSession, push_id: int, key: str, until: datetime) -> None:
    """A counter edit made in this window waits for the window's end (only the row made under
    `key` now: the original post or an older waiting edit that took the text keep their time)."""
    await session.execute(
        update(OutboxPush)
        .where(
            OutboxPush.id == push_id, OutboxPush.dedupe_key == key, OutboxPush.state == "pending"
        )
        .values(next_attempt_at=until)
    )


def push_prefix(sale_id: int) -> str:
    return f"flashsale:{sale_id}:push:"
