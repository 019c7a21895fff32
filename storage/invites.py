"""Invite attribution and the inviter's reward, each decided once by a row's state change.

An invitee has at most one row (unique `invitee_id`), so two apps attributing the same person
at once attribute once. The inviter's reward moves a row out of `waiting` with a conditional
UPDATE, so two first check-ins arriving at once reward once; approval moves it out of `review`
the same way.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring, rowcount
from storage.ledger import lock_member
from storage.models import Invite, Member

WAITING, REVIEW, REWARDED, REJECTED, VOID = "waiting", "review", "rewarded", "rejected", "void"

_invites: Table = Invite.__table__  # type: ignore[assignment]
_INSERT = insert_ignoring(
    _invites,
    ("inviter_id", "invitee_id", "via", "status", "created_at"),
    ("invitee_id",),
    "id",
)


def normalise_code(raw: str) -> str:
    """Codes are case-insensitive and often pasted with spaces or dashes; NFKC because Chinese
    input methods in full-width mode send "ＡＢＣ２３４"."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", raw).upper() if ch.isalnum())


async def member_by_code(session: AsyncSession, code: str) -> Member | None:
    """The member owning an invite code; a code of a merged member leads to the survivor."""
    member = (
        await session.execute(select(Member).where(Member.invite_code == code))
    ).scalar_one_or_none()
    seen = 0
    while member is not None and member.merged_into_id is not None and seen < 10:
        member = await session.get(Member, member.merged_into_id)
        seen += 1
    return member


async def attribute(
    session: AsyncSession, inviter_id: int, invitee_id: int, via: str, now: datetime
) -> int | None:
    """Record who invited whom; the invite's id, or None when the invitee had one already."""
    params = {
        "inviter_id": inviter_id,
        "invitee_id": invitee_id,
        "via": via,
        "status": WAITING,
        "created_at": now,
    }
    found = (await session.execute(_INSERT, params)).scalar_one_or_none()
    return int(found) if found is not None else None


async def of_invitee(
    session: AsyncSession, invitee_id: int, *, lock: bool = False
) -> Invite | None:
    stmt = select(Invite).where(Invite.invitee_id == invitee_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get(session: AsyncSession, invite_id: int) -> Invite | None:
    return await session.get(Invite, invite_id)


@dataclass(frozen=True)
class Counts:
    invited: int
    rewarded: int
    review: int


async def counts(session: AsyncSession, inviter_id: int) -> Counts:
    rows = (
        await session.execute(
            select(Invite.status, func.count())
            .where(Invite.inviter_id == inviter_id, Invite.status != VOID)
            .group_by(Invite.status)
        )
    ).all()
    by_status = {status: int(n) for status, n in rows}
    return Counts(sum(by_status.values()), by_status.get(REWARDED, 0), by_status.get(REVIEW, 0))


async def settle_first_checkin(
    session: AsyncSession, invitee_id: int, day: date, daily_cap: int, now: datetime
) -> Invite | None:
    """Move the invitee's `waiting` row to rewarded (or to review past the inviter's daily cap).

    Returns the row when this call moved it, None when there was nothing to move (no invite,
    or another call moved it first). The inviter's member row is locked while counting, so
    rewards of many invitees of one inviter at once never pass the cap. The caller has locked
    both members already (see `lock_pair`), so this takes no lock out of order.
    """
    invite = await of_invitee(session, invitee_id)
    if invite is None or invite.status != WAITING:
        return None
    paid_today = (
        await session.execute(
            select(func.count()).where(
                Invite.inviter_id == invite.inviter_id,
                Invite.reward_day == day,
                Invite.status == REWARDED,
            )
        )
    ).scalar_one()
    status = REWARDED if paid_today < daily_cap else REVIEW
    moved = await session.execute(
        update(Invite)
        .where(Invite.id == invite.id, Invite.status == WAITING)
        .values(status=status, reward_day=day, decided_at=now if status == REWARDED else None)
    )
    if rowcount(moved) != 1:
        return None
    await session.refresh(invite)
    return invite


async def lock_pair(session: AsyncSession, a: int, b: int) -> None:
    """Lock two members in id order, the order merging takes them in (no deadlock)."""
    for member_id in sorted({a, b}):
        await lock_member(session, member_id)


async def lock_for_merge(session: AsyncSession, survivor_id: int, loser_id: int) -> None:
    """Before two members merge: lock them and the inviters of their invites, all in id order.
    Voiding an invite takes its reward back from its inviter; taking that lock only then, after
    the two members, could deadlock against the inviter's own check-in or a review."""
    rows = await session.execute(
        select(Invite.inviter_id).where(Invite.invitee_id.in_((survivor_id, loser_id)))
    )
    ids = {survivor_id, loser_id, *rows.scalars()}
    await session.execute(
        select(Member.id).where(Member.id.in_(ids)).order_by(Member.id).with_for_update()
    )


async def decide(
    session: AsyncSession, invite_id: int, approve: bool, now: datetime
) -> Invite | None:
    """A moderator's decision on a reward in review; None when it is not (or no longer) there.

    The inviter is locked before the invite's row, the order a merge takes them in."""
    found = await session.get(Invite, invite_id)
    if found is None:
        return None
    await lock_member(session, found.inviter_id)
    moved = await session.execute(
        update(Invite)
        .where(Invite.id == invite_id, Invite.status == REVIEW)
        .values(status=REWARDED if approve else REJECTED, decided_at=now)
    )
    if rowcount(moved) != 1:
        return None
    invite = await session.get(Invite, invite_id)
    if invite is not None:
        await session.refresh(invite)
    return invite


async def listing(
    session: AsyncSession, status: str | None = None, limit: int = 200
) -> list[Invite]:
    stmt = select(Invite).order_by(Invite.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Invite.status == status)
    return list((await session.execute(stmt)).scalars())


async def set_status(session: AsyncSession, invite_id: int, status: str, now: datetime) -> None:
    """For rows the caller holds locked (see `between` and `of_invitee(lock=True)`)."""
    await session.execute(
        update(Invite).where(Invite.id == invite_id).values(status=status, decided_at=now)
    )


async def between(session: AsyncSession, a: int, b: int) -> list[Invite]:
    """Rows where one of the two members invited the other (linking them makes a self-invite)."""
    stmt = (
        select(Invite)
        .where(
            ((Invite.inviter_id == a) & (Invite.invitee_id == b))
            | ((Invite.inviter_id == b) & (Invite.invitee_id == a))
        )
        .with_for_update()
    )
    return list((await session.execute(stmt)).scalars())


async def move_inviter(session: AsyncSession, loser_id: int, survivor_id: int) -> None:
    await session.execute(
        update(Invite).where(Invite.inviter_id == loser_id).values(inviter_id=survivor_id)
    )


async def move_invitee(session: AsyncSession, loser_id: int, survivor_id: int) -> None:
    await session.execute(
        update(Invite).where(Invite.invitee_id == loser_id).values(invitee_id=survivor_id)
    )
