"""Members and their identities: lookup-or-create on first contact, and merging two into one."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Table, bindparam, case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage import badges, communities, flash_claims, hot, roles, tickets
from storage.db import Database, insert_ignoring, rowcount
from storage.models import (
    Checkin,
    EarningEvent,
    Identity,
    LedgerEntry,
    LinkCode,
    Member,
    Order,
    Voucher,
)
from storage.stats import rollup

_members: Table = Member.__table__  # type: ignore[assignment]
_identities: Table = Identity.__table__  # type: ignore[assignment]
_BY_IDENTITY = (
    select(_members)
    .join(_identities, _identities.c.member_id == _members.c.id)
    .where(
        _identities.c.channel == bindparam("channel"),
        _identities.c.external_id == bindparam("external_id"),
    )
)
_grown = _members.c.growth + bindparam("delta")
_ADD_GROWTH = (
    update(_members)
    .where(_members.c.id == bindparam("member_id"))
    .values(growth=case((_grown < 0, 0), else_=_grown))
    .returning(_members.c.growth, _members.c.tier)
)

_INSERT_IDENTITY = insert_ignoring(
    _identities,
    ("member_id", "channel", "external_id", "created_at", "unreachable"),
    ("channel", "external_id"),
    "id",
)

# No 0/O, 1/I/L: codes are read aloud and typed from screenshots.
INVITE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_invite_code(length: int = 6) -> str:
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(length))


async def find_by_identity(session: AsyncSession, channel: str, external_id: str) -> Member | None:
    """The member behind an account, as a detached snapshot (one cached Core query: this runs
    for every message, and loading through the ORM costs several times more)."""
    row = (
        await session.execute(_BY_IDENTITY, {"channel": channel, "external_id": external_id})
    ).first()
    return Member(**row._mapping) if row is not None else None


_COLUMNS = tuple(c.name for c in _members.columns)
_LOOKUP_SQL = (
    f"SELECT {', '.join('m.' + c for c in _COLUMNS)} FROM members m "
    "JOIN identities i ON i.member_id = m.id WHERE i.channel = {0} AND i.external_id = {1}"
)
_LOOKUP_PG, _LOOKUP_LITE = _LOOKUP_SQL.format("$1", "$2"), _LOOKUP_SQL.format("?", "?")
_LITE_TIMES = tuple(c.name for c in _members.columns if c.name.endswith("_at"))


def _lite_lookup(conn: Any, channel: str, external_id: str) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = conn.execute(_LOOKUP_LITE, (channel, external_id)).fetchone()
    return row


async def lookup(db: Database, channel: str, external_id: str) -> Member | None:
    """`find_by_identity` for the per-message lookup: through the driver (asyncpg's statement
    cache; one thread hop on SQLite), without a session around one SELECT."""
    async with hot.driver(db, read=True) as conn:
        if db.dialect == "sqlite":
            # aiosqlite runs `_execute`'s function in the connection's thread (no public name).
            row = await conn._execute(_lite_lookup, conn._conn, channel, external_id)
        else:
            row = await conn.fetchrow(_LOOKUP_PG, channel, external_id)
    if row is None:
        return None
    values = dict(zip(_COLUMNS, row, strict=True))
    if db.dialect == "sqlite":  # stored as naive UTC text, as storage.models.UTCDateTime does
        for name in _LITE_TIMES:
            if values[name] is not None:
                values[name] = datetime.fromisoformat(values[name]).replace(tzinfo=UTC)
    return Member(**values)


# ----------------------------------------------------------------------------------- known

# Per database (tests run many in one process): account -> the member last looked up for it
# in this process. Only a caller whose own statement checks the answer may trust it (see
# `get_or_create(known=True)`); every lookup refreshes it. Insertion order: the oldest entry
# goes first when full (about 1.3 KB per entry: 20 000 is ~26 MB).
_KNOWN: WeakKeyDictionary[Database, dict[tuple[str, str], Member]] = WeakKeyDictionary()
KNOWN_MAX = 20_000


def _known(db: Database) -> dict[tuple[str, str], Member]:
    table = _KNOWN.get(db)
    if table is None:
        table = _KNOWN[db] = {}
    return table


def remember(db: Database, channel: str, external_id: str, member: Member) -> None:
    """The member an account was just found (or created) for, in this process."""
    table = _known(db)
    account = (channel, external_id)
    table.pop(account, None)  # re-inserted at the end: the newest goes last
    if len(table) >= KNOWN_MAX:
        del table[next(iter(table))]
    table[account] = member


def forget(db: Database, channel: str, external_id: str) -> None:
    """Drop what this process knows of an account (found moved, or changed, since)."""
    _known(db).pop((channel, external_id), None)


def forget_all(db: Database) -> None:
    """Nothing known of any account on `db` (as a process that just started)."""
    _KNOWN.pop(db, None)


def _forget_members(session: AsyncSession, *member_ids: int) -> None:
    """Changed here (language, linking): their accounts are looked up afresh next time (on
    the database of `session`). Only to spare a stale entry's check-in its retry: a stale
    entry is never trusted anyway."""
    for db, table in list(_KNOWN.items()):
        if session.bind in db.engines:
            for account in [a for a, m in table.items() if m.id in member_ids]:
                del table[account]


async def get(session: AsyncSession, member_id: int) -> Member | None:
    return await session.get(Member, member_id)


async def get_or_create(
    db: Database,
    channel: str,
    external_id: str,
    now: datetime,
    *,
    display_name: str | None = None,
    known: bool = False,
) -> tuple[Member, bool]:
    """The member behind (channel, external_id), created on first contact; True when new.

    Two first messages racing each other both try to insert the identity; the unique
    constraint lets one win and the other reads the winner's member.

    `known`: the member this process last found for the account, if any, without asking
    the database. It may be stale in every way (another process linked the account to
    another member, erased it, changed the language or the tier): only for a caller whose
    own statement checks that the account still belongs to that member and reads what it
    needs of the member itself (storage/checkin_fast.py), and that runs once more with
    `known=False` when it does not (MemberMerged).
    """
    if known:
        hit = _known(db).get((channel, external_id))
        if hit is not None:
            return hit, False
    found = await lookup(db, channel, external_id)
    if found is not None:
        remember(db, channel, external_id, found)
        return found, False
    for _ in range(5):
        try:
            async with db.transaction() as session:
                member = Member(
                    created_at=now,
                    display_name=(display_name or None) and display_name[:64],
                    points=0,
                    growth=0,
                    tier="bronze",
                    invite_code=new_invite_code(),
                )
                session.add(member)
                await session.flush()
                values = {
                    "member_id": member.id,
                    "channel": channel,
                    "external_id": external_id,
                    "created_at": now,
                    "unreachable": False,
                }
                inserted = (await session.execute(_INSERT_IDENTITY, values)).scalar_one_or_none()
                if inserted is None:
                    raise _LostRace
            remember(db, channel, external_id, member)  # committed
            return member, True
        except _LostRace:
            async with db.reader() as session:
                found = await find_by_identity(session, channel, external_id)
                if found is not None:
                    remember(db, channel, external_id, found)
                    return found, False
        except IntegrityError:
            continue  # an invite code collision: draw another
    raise RuntimeError(f"could not create a member for {channel}")


class _LostRace(Exception):
    pass


async def identities_of(session: AsyncSession, member_id: int) -> list[Identity]:
    stmt = select(Identity).where(Identity.member_id == member_id).order_by(Identity.id)
    return list((await session.execute(stmt)).scalars())


async def set_locale(session: AsyncSession, member_id: int, locale: str) -> None:
    await session.execute(update(Member).where(Member.id == member_id).values(locale=locale))
    _forget_members(session, member_id)


async def set_birthday_once(session: AsyncSession, member_id: int, birthday: str) -> bool:
    """Set the birthday unless one is set already (it doubles points, so it is not editable)."""
    result = await session.execute(
        update(Member)
        .where(Member.id == member_id, Member.birthday.is_(None))
        .values(birthday=birthday)
    )
    return rowcount(result) == 1


async def add_growth(session: AsyncSession, member_id: int, delta: int) -> tuple[int, str]:
    """Add (or, for refunds, take back down to zero) growth; returns (growth, tier held)."""
    result = await session.execute(_ADD_GROWTH, {"member_id": member_id, "delta": delta})
    growth, tier = result.one()
    return int(growth), str(tier)


async def set_tier(session: AsyncSession, member_id: int, tier: str) -> None:
    await session.execute(update(Member).where(Member.id == member_id).values(tier=tier))


@dataclass(frozen=True)
class Merged:
    survivor: Member
    loser_tier: str
    duplicate_days: list[tuple[date, int]]  # (day, points) of the loser's check-ins dropped


async def merge(session: AsyncSession, survivor_id: int, loser_id: int) -> Merged:
    """Fold `loser` into `survivor`: identities, ledger, check-ins, orders, growth,
    communities, roles and flash-sale claims move over (invites are settled by the caller:
    see handlers/invites).

    Check-in days both halves have are kept once (the survivor's row); the caller reverses
    the duplicate day's reward so nothing is counted twice.
    """
    survivor = (
        await session.execute(select(Member).where(Member.id == survivor_id).with_for_update())
    ).scalar_one()
    loser = (
        await session.execute(select(Member).where(Member.id == loser_id).with_for_update())
    ).scalar_one()
    survivor_days = set(
        (
            await session.execute(select(Checkin.day).where(Checkin.member_id == survivor_id))
        ).scalars()
    )
    duplicates = [
        (day, pts)
        for day, pts in (
            await session.execute(
                select(Checkin.day, Checkin.points).where(Checkin.member_id == loser_id)
            )
        ).all()
        if day in survivor_days
    ]
    if duplicates:
        await session.execute(
            delete(Checkin).where(
                Checkin.member_id == loser_id, Checkin.day.in_([d for d, _ in duplicates])
            )
        )
    await session.execute(
        update(Checkin).where(Checkin.member_id == loser_id).values(member_id=survivor_id)
    )
    for model in (Identity, LedgerEntry, Order, Voucher, EarningEvent):
        await session.execute(
            update(model).where(model.member_id == loser_id).values(member_id=survivor_id)
        )
    await session.execute(delete(LinkCode).where(LinkCode.member_id == loser_id))
    await rollup.refresh(session, [survivor_id, loser_id])  # their entries moved
    await communities.merge(session, survivor_id, loser_id)
    await roles.merge(session, survivor_id, loser_id)
    await tickets.merge(session, survivor_id, loser_id)
    await badges.merge(session, survivor_id, loser_id)
    await flash_claims.merge(session, survivor_id, loser_id)
    await session.execute(
        update(Member)
        .where(Member.id == survivor_id)
        .values(
            points=Member.points + loser.points,
            growth=Member.growth + loser.growth,
            locale=survivor.locale or loser.locale,
            birthday=survivor.birthday or loser.birthday,
            display_name=survivor.display_name or loser.display_name,
        )
    )
    await session.execute(
        update(Member)
        .where(Member.id == loser_id)
        .values(points=0, growth=0, merged_into_id=survivor_id)
    )
    await session.refresh(survivor)
    _forget_members(session, survivor_id, loser_id)
    return Merged(survivor, loser.tier, sorted(duplicates))


async def set_birthday(session: AsyncSession, member_id: int, birthday: str | None) -> None:
    """An operator's correction: whatever was set before (the caller holds the member's lock)."""
    await session.execute(update(Member).where(Member.id == member_id).values(birthday=birthday))
