"""A member's data: what is kept (counts), all of it (export), and erasing the personal part.

Erasure keeps the numbers (ledger, check-ins, orders, memberships) under the same member row,
which becomes anonymous: no accounts, no name, birthday or language, no texts of pushes (also
those addressed to one of their app accounts without naming the member, e.g. a late WeChat
answer), no texts, photos or names in their complaints (ticket numbers, states and dates stay).
The dashboard's totals therefore do not move, and nothing left names the person.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.ledger import ADJUST
from storage.members import new_invite_code
from storage.models import (
    Base,
    Checkin,
    CommunityMember,
    FlashClaim,
    Identity,
    Invite,
    LedgerEntry,
    LinkCode,
    Member,
    Order,
    OutboxPush,
    Role,
    Ticket,
    TicketEvent,
    TicketMessage,
)

ERASED = "erased"  # last_error of pushes that were still waiting when their member was erased
# Tables whose rows are about the member (besides the member row): exported whole.
_BY_MEMBER = "member_id"
_BY_TICKET = "ticket_id"  # rows of their complaints (the conversation, the audit trail)
_INVITE_COLUMNS = ("inviter_id", "invitee_id")


async def member_ids(session: AsyncSession, member_id: int) -> list[int]:
    """The member and every member merged into them (linked accounts), at any depth."""
    found = [member_id]
    frontier = [member_id]
    while frontier:
        rows = await session.execute(select(Member.id).where(Member.merged_into_id.in_(frontier)))
        frontier = [i for i in rows.scalars() if i not in found]
        found.extend(frontier)
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


async def _rows(session: AsyncSession, table: Table, where: Any) -> list[dict[str, Any]]:
    result = await session.execute(select(table).where(where).order_by(*table.primary_key))
    return [{k: _plain(v) for k, v in row._mapping.items()} for row in result]


async def _ticket_ids(session: AsyncSession, ids: list[int]) -> list[int]:
    rows = await session.execute(select(Ticket.id).where(Ticket.member_id.in_(ids)))
    return list(rows.scalars())


async def export(session: AsyncSession, member_id: int) -> dict[str, Any]:
    """Every row that is about the member, table by table (tables added later included):
    their complaints' conversations and audit trails too."""
    ids = await member_ids(session, member_id)
    tickets = await _ticket_ids(session, ids)
    data: dict[str, Any] = {}
    for table in Base.metadata.sorted_tables:
        if table.name == Member.__tablename__:
            data[table.name] = await _rows(session, table, table.c.id.in_(ids))
        elif _BY_MEMBER in table.c:
            data[table.name] = await _rows(session, table, table.c[_BY_MEMBER].in_(ids))
        elif _BY_TICKET in table.c:
            data[table.name] = await _rows(session, table, table.c[_BY_TICKET].in_(tickets))
        elif all(c in table.c for c in _INVITE_COLUMNS):
            where = or_(*(table.c[c].in_(ids) for c in _INVITE_COLUMNS))
            data[table.name] = await _rows(session, table, where)
    return data


async def kept(session: AsyncSession, member_id: int) -> dict[str, int]:
    """How many records of each kind are kept about the member (for /mydata)."""
    ids = await member_ids(session, member_id)

    async def count(model: Any, *where: Any) -> int:
        stmt = select(func.count()).select_from(model).where(*where)
        return int((await session.execute(stmt)).scalar_one())

    return {
        "accounts": await count(Identity, Identity.member_id.in_(ids)),
        "ledger": await count(LedgerEntry, LedgerEntry.member_id.in_(ids)),
        "checkins": await count(Checkin, Checkin.member_id.in_(ids)),
        "orders": await count(Order, Order.member_id.in_(ids)),
        "communities": await count(
            CommunityMember,
            CommunityMember.member_id.in_(ids),
            CommunityMember.status == "joined",
        ),
        "invited": await count(Invite, Invite.inviter_id.in_(ids)),
        "pushes": await count(OutboxPush, OutboxPush.member_id.in_(ids)),
    }


async def erase(session: AsyncSession, member_id: int, now: datetime) -> list[int]:
    """Erase the member's personal data (and that of members merged into them); returns the
    erased member ids. Points, growth, tier and every number stay, so totals are unchanged."""
    ids = await member_ids(session, member_id)
    # Lock first: a concurrent handler of this member then waits, and finds no account after.
    await session.execute(select(Member.id).where(Member.id.in_(ids)).with_for_update())
    # Read before they go: the names and accounts find what else mentions the member.
    names = await session.execute(select(Member.id, Member.display_name).where(Member.id.in_(ids)))
    named = {str(name): one for one, name in names.all() if name}
    pairs = await account_pairs(session, member_id)
    await _erase_tickets(session, ids, named, now)
    for one in ids:
        # A fresh code: an old shared invite link no longer leads to this member.
        await session.execute(
            update(Member)
            .where(Member.id == one)
            .values(
                display_name=None,
                birthday=None,
                locale=None,
                invite_code=new_invite_code(12),
            )
        )
    # An operator's adjustment gives its reason in free text ("sorry about your wedding cake,
    # Mrs Li"): it goes; the amounts (and the system's own reasons) stay, so totals do too.
    await session.execute(
        update(LedgerEntry)
        .where(LedgerEntry.member_id.in_(ids), LedgerEntry.kind == ADJUST)
        .values(reason="")
    )
    await session.execute(delete(Identity).where(Identity.member_id.in_(ids)))
    await session.execute(delete(LinkCode).where(LinkCode.member_id.in_(ids)))
    await session.execute(delete(Role).where(Role.member_id.in_(ids)))
    # A claim's message key carries the chat it was sent from (a Telegram user id).
    await session.execute(
        update(FlashClaim).where(FlashClaim.member_id.in_(ids)).values(message_key=None)
    )
    # Pushes to the member, or to one of their accounts without naming the member (a late
    # WeChat answer to an openid): what was said, and the chat it went to, name them.
    to_them = or_(
        OutboxPush.member_id.in_(ids),
        *(and_(OutboxPush.channel == c, OutboxPush.chat_id == e) for c, e in pairs),
    )
    await _blank_pushes(session, to_them, now, chat_id="")
    return ids


async def _blank_pushes(session: AsyncSession, where: Any, now: datetime, **more: Any) -> None:
    """Waiting pushes fail as erased; every matching push loses its text (kinds, dates stay)."""
    waiting = OutboxPush.state.in_(("pending", "held"))
    await session.execute(
        update(OutboxPush)
        .where(where, waiting)
        .values(state="failed", last_error=ERASED, leased_until=None, updated_at=now)
    )
    await session.execute(update(OutboxPush).where(where).values(payload={"text": ""}, **more))


async def _erase_tickets(
    session: AsyncSession, ids: list[int], named: dict[str, int], now: datetime
) -> None:
    """Their complaints keep number, state and dates; texts, photos and names go. Their name
    in any ticket's audit trail (a staff member's too) becomes their anonymous number."""
    tickets = await _ticket_ids(session, ids)
    if tickets:
        await session.execute(
            update(TicketMessage)
            .where(TicketMessage.ticket_id.in_(tickets))
            .values(text="", photo=None)
        )
        # What the staff chat was told about these tickets (the text, the name, the photo).
        about = or_(*(OutboxPush.dedupe_key.like(f"ticket:{n}:%") for n in tickets))
        posts = list((await session.execute(select(OutboxPush.id).where(about))).scalars())
        await _blank_pushes(session, or_(about, OutboxPush.edit_of.in_(posts)), now)
    for one in ids:
        await session.execute(
            update(TicketMessage).where(TicketMessage.author_id == one).values(author=f"#{one}")
        )
    for name, one in named.items():
        await session.execute(
            update(TicketEvent).where(TicketEvent.actor == name[:64]).values(actor=f"#{one}")
        )
        await session.execute(
            update(TicketEvent)
            .where(TicketEvent.action == f"assigned to {name}"[:200])
            .values(action=f"assigned to #{one}")
        )
        # Messages filed in their name without an author id.
        await session.execute(
            update(TicketMessage)
            .where(TicketMessage.ticket_id.in_(tickets), TicketMessage.author == name[:64])
            .values(author=f"#{one}")
        )


async def ticket_photos(session: AsyncSession, member_id: int) -> list[str]:
    """The files kept for the member's complaints (deleted once they are erased)."""
    tickets = await _ticket_ids(session, await member_ids(session, member_id))
    rows = await session.execute(
        select(TicketMessage.photo).where(
            TicketMessage.ticket_id.in_(tickets), TicketMessage.photo.is_not(None)
        )
    )
    return [str(path) for path in rows.scalars()]


async def account_pairs(session: AsyncSession, member_id: int) -> list[tuple[str, str]]:
    """The member's app accounts as (channel, external id), oldest first."""
    ids = await member_ids(session, member_id)
    rows = await session.execute(
        select(Identity.channel, Identity.external_id)
        .where(Identity.member_id.in_(ids))
        .order_by(Identity.id)
    )
    return [(str(channel), str(external_id)) for channel, external_id in rows.all()]


async def accounts(session: AsyncSession, member_id: int) -> list[str]:
    """The member's app accounts as "channel id" (for /mydata)."""
    return [f"{c} {e}" for c, e in await account_pairs(session, member_id)]
