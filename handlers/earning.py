"""More ways to earn: deeds the shop reports (POST /api/events), credited once per event id
by the rules' [earning] table, within each type's daily cap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.clock import local_day
from bot.core.context import Services
from handlers.tiers import apply_growth
from storage import earning, ledger, members
from storage.db import once_more_if_needed
from storage.ledger import lock_member

CREDITED, CAPPED, DUPLICATE = "credited", "capped", "duplicate"


@dataclass(frozen=True)
class EventIn:
    event_id: str
    channel: str
    external_id: str
    type: str


@dataclass(frozen=True)
class EventOutcome:
    event_id: str
    member_id: int
    type: str
    result: str  # credited, capped (the day's cap for the type was reached), duplicate
    points: int
    growth: int
    tier: str


class EventConflict(Exception):
    """The event id was reported for another member: nothing changes."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


async def apply_event(services: Services, event: EventIn) -> EventOutcome:
    """Credit the deed once; a repeat of its id (even 20 at once) changes nothing."""

    async def for_member() -> EventOutcome:
        async with services.db.reader() as session:
            known = await earning.get(session, event.event_id)
            member = await members.find_by_identity(session, event.channel, event.external_id)
        if known is not None and (member is None or member.id != known.member_id):
            raise _not_the_owner(event, known.member_id)
        now = services.clock.now()
        member, _ = await members.get_or_create(services.db, event.channel, event.external_id, now)
        return await _credit(services, event, member.id)

    return await once_more_if_needed(for_member)


def _not_the_owner(event: EventIn, owner_id: int) -> EventConflict:
    return EventConflict(
        f"event_id {event.event_id} was reported for another member", member_id=owner_id
    )


async def _credit(services: Services, event: EventIn, member_id: int) -> EventOutcome:
    rules, now = services.rules, services.clock.now()
    rule = rules.earning[event.type]
    day = local_day(now, services.settings.tz)
    async with services.db.transaction() as session:
        held = await lock_member(session, member_id)  # serialises the member's daily count
        if not await earning.record(session, event.event_id, member_id, event.type, day, now):
            known = await earning.get(session, event.event_id)
            if known is not None and known.member_id != member_id:
                raise _not_the_owner(event, known.member_id)
            return EventOutcome(event.event_id, member_id, event.type, DUPLICATE, 0, 0, held.tier)
        done = await earning.credited_on(session, member_id, event.type, day)
        if rule.daily_cap is not None and done >= rule.daily_cap:
            return EventOutcome(event.event_id, member_id, event.type, CAPPED, 0, 0, held.tier)
        if rule.points:
            await ledger.earn(
                session,
                member_id,
                rule.points,
                event.type,
                f"event:{event.event_id}",
                now,
                expiry_days=rules.points.expiry_days,
            )
        change = await apply_growth(session, rules, member_id, rule.growth)
        await earning.mark_credited(session, event.event_id, rule.points, rule.growth)
    if rule.points:
        services.metrics.points_issued.labels("event").inc(rule.points)
    return EventOutcome(
        event.event_id, member_id, event.type, CREDITED, rule.points, rule.growth, change.new
    )
