"""The shop's orders and refunds: checked field by field, applied once, refusals named."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.admin import fields
from bot.admin.errors import Conflict, Invalid
from bot.core.context import Services
from handlers.orders import OrderConflict, OrderIn, OrderInvalid, OrderOutcome, apply_order
from storage.orders import PAID, REFUNDED

ORDER_ID_MAX = REFUND_ID_MAX = 64


def parse_order(data: Mapping[str, object], services: Services) -> OrderIn:
    """The order (or refund) in `data`; `Invalid` names the first field that cannot be."""
    order_id = fields.key_text("order_id", data.get("order_id"), ORDER_ID_MAX)
    channel = fields.channel(data.get("channel"))
    external_id = fields.external_id(data.get("external_id"))
    currency = data.get("currency")
    accepted = services.rules.orders.currencies
    if currency not in accepted:
        raise Invalid("currency", f"currency must be one of {', '.join(accepted)}")
    status = fields.choice("status", data.get("status"), (PAID, REFUNDED))
    amount = fields.money("amount", data.get("amount"), services.rules.limits.max_order_amount)
    refund_id = data.get("refund_id")
    if refund_id is not None:
        if status != REFUNDED:
            raise Invalid("refund_id", "refund_id goes with status refunded only")
        refund_id = fields.key_text("refund_id", refund_id, REFUND_ID_MAX)
    return OrderIn(order_id, channel, external_id, amount, str(currency), status, refund_id)


def outcome_json(outcome: OrderOutcome, order: OrderIn) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "order_id": outcome.order_id,
        "member_id": outcome.member_id,
        "result": outcome.result,
        "points": outcome.points,
        "growth": outcome.growth,
        "tier": outcome.tier,
    }
    if order.status == REFUNDED:
        answer["refund_id"] = order.refund_id
        answer["refunded"] = None if outcome.refunded is None else str(outcome.refunded)
    return answer


async def post_order(services: Services, data: Mapping[str, object]) -> dict[str, Any]:
    """Apply the shop's order or refund; the answer says what it did (or that it was done)."""
    order = parse_order(data, services)
    try:
        outcome = await apply_order(services, order)
    except OrderInvalid as refused:
        raise Invalid(refused.field, refused.message, **refused.details) from None
    except OrderConflict as refused:
        raise Conflict(refused.message, **refused.details) from None
    return outcome_json(outcome, order)
