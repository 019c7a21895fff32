"""Operator actions on one member: read them, page through their ledger, adjust their points."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.admin import fields
from bot.admin.errors import Conflict, Invalid, NotFound
from bot.core.clock import local_day
from bot.core.context import Services
from storage import checkins, ledger, members
from storage.db import once_more_if_needed
from storage.errors import InsufficientPoints
from storage.ledger import lock_member
from storage.models import LedgerEntry, Member

LEDGER_PAGE_MAX, LEDGER_PAGE_DEFAULT = 1000, 100
REASON_MAX, KEY_MAX = 64, 120


async def find(services: Services, channel: str, external_id: str) -> Member:
    """The member behind an app account; NotFound for an unknown channel or account."""
    channel, external_id = fields.account(channel, external_id)
    async with services.db.reader() as session:
        found = await members.find_by_identity(session, channel, external_id)
    if found is None:
        raise NotFound("unknown member")
    return found


async def member_json(services: Services, channel: str, external_id: str) -> dict[str, Any]:
    """What the bot knows of a member: balance, growth, tier, streak, code, accounts."""
    member = await find(services, channel, external_id)
    today = local_day(services.clock.now(), services.settings.tz)
    async with services.db.reader() as session:
        streak = await checkins.current_streak(session, member.id, today)
        identities = await members.identities_of(session, member.id)
    return {
        "id": member.id,
        "points": member.points,
        "growth": member.growth,
        "tier": member.tier,
        "discount": services.rules.tier(member.tier).discount,
        "streak": streak,
        "invite_code": member.invite_code,
        "locale": member.locale or services.settings.default_locale,
        "birthday": member.birthday,
        "created_at": member.created_at.isoformat(),
        "identities": [
            {"channel": i.channel, "external_id": i.external_id, "unreachable": i.unreachable}
            for i in identities
        ],
    }


def entry_json(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "kind": entry.kind,
        "amount": entry.amount,
        "reason": entry.reason,
        "idempotency_key": entry.idempotency_key,
        "created_at": entry.created_at.isoformat(),
        "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
        "remaining": entry.remaining,
    }


def page_size(raw: str | None) -> int:
    if raw is None:
        return LEDGER_PAGE_DEFAULT
    return fields.query_number("limit", raw, 1, LEDGER_PAGE_MAX)


async def ledger_page(
    services: Services, channel: str, external_id: str, limit: int
) -> list[dict[str, Any]]:
    """The member's newest `limit` ledger entries, newest first."""
    member = await find(services, channel, external_id)
    async with services.db.reader() as session:
        entries = await ledger.recent(session, member.id, limit)
    return [entry_json(e) for e in entries]


@dataclass(frozen=True)
class Adjustment:
    amount: int
    reason: str
    key: str


def parse_adjustment(data: Mapping[str, object], limit: int) -> Adjustment:
    """`amount` (± whole points, not 0), `reason` (shown to the member), `idempotency_key`."""
    amount = fields.whole_number("amount", data.get("amount"), -limit, limit)
    if amount == 0:
        raise Invalid("amount", "amount must be a non-zero whole number")
    reason = data.get("reason")
    if (
        not isinstance(reason, str)
        or not 1 <= len(reason.strip()) <= REASON_MAX
        or not fields.plain_text(reason)
    ):
        raise Invalid("reason", f"reason must be text of 1 to {REASON_MAX} characters")
    key = fields.key_text("idempotency_key", data.get("idempotency_key"), KEY_MAX)
    return Adjustment(amount, reason.strip(), key)


async def adjust_points(
    services: Services, channel: str, external_id: str, data: Mapping[str, object]
) -> dict[str, Any]:
    """A manual correction, once per idempotency key: the key again with the same amount and
    reason changes nothing; with another amount or reason it is a Conflict."""
    wanted = parse_adjustment(data, services.rules.points.max_adjustment)

    async def for_member() -> ledger.Movement:
        # Looked up inside the retry: the second run acts for the merged member, if the
        # accounts were linked meanwhile (or PostgreSQL aborted the first to break a deadlock).
        member = await find(services, channel, external_id)
        return await _apply(services, member.id, wanted)

    try:
        moved = await once_more_if_needed(for_member)
    except InsufficientPoints as exc:
        raise Conflict(
            "adjustment would take the balance below zero",
            balance=exc.balance,
            requested=wanted.amount,
        ) from None
    return {"applied": moved.applied, "amount": moved.amount, "balance": moved.balance}


async def _apply(services: Services, member_id: int, wanted: Adjustment) -> ledger.Movement:
    key = f"adjust:{member_id}:{wanted.key}"
    async with services.db.transaction() as session:
        held = await lock_member(session, member_id)  # the key and the bound checked under it
        earlier = await ledger.entry(session, key)
        if earlier is not None:
            _same_as_before(earlier, wanted)
            return ledger.Movement(False, 0, held.points)
        bound = services.rules.limits.max_balance
        if wanted.amount > 0 and held.points + wanted.amount > bound:
            raise Invalid(
                "amount",
                f"amount would take the balance past the limit of {bound} points",
                balance=held.points,
            )
        return await ledger.adjust(
            session,
            member_id,
            wanted.amount,
            wanted.reason,
            key,
            services.clock.now(),
            expiry_days=services.rules.points.expiry_days,
        )


def _same_as_before(earlier: LedgerEntry, wanted: Adjustment) -> None:
    """A repeated key must repeat the adjustment; another amount or reason is a mistake."""
    if (earlier.amount, earlier.reason) == (wanted.amount, wanted.reason):
        return
    raise Conflict(
        f"idempotency_key {wanted.key} was already used for an adjustment of "
        f"{earlier.amount:+d} ({earlier.reason})",
        field="idempotency_key",
        applied={
            "amount": earlier.amount,
            "reason": earlier.reason,
            "created_at": earlier.created_at.isoformat(),
        },
    )
