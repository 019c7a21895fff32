"""The shop's other deeds (POST /api/events): checked field by field, applied once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from bot.admin import fields
from bot.admin.errors import Conflict, Invalid
from bot.core.context import Services
from handlers.earning import EventConflict, EventIn, apply_event

EVENT_ID_MAX = 64


def parse_event(data: Mapping[str, object], services: Services) -> EventIn:
    """`event_id`, `channel`, `external_id`, `type` (a key of the rules' [earning] table)."""
    event_id = fields.key_text("event_id", data.get("event_id"), EVENT_ID_MAX)
    channel = fields.channel(data.get("channel"))
    external_id = fields.external_id(data.get("external_id"))
    types = sorted(services.rules.earning)
    if data.get("type") not in types:
        raise Invalid("type", f"type must be one of {', '.join(types)}")
    return EventIn(event_id, channel, external_id, str(data["type"]))


async def post_event(services: Services, data: Mapping[str, object]) -> dict[str, Any]:
    event = parse_event(data, services)
    try:
        outcome = await apply_event(services, event)
    except EventConflict as refused:
        raise Conflict(refused.message, **refused.details) from None
    return asdict(outcome)
