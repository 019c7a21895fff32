"""POST /api/orders: the shop's paid and refunded orders, HMAC-signed, applied exactly once."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from bot.http.common import core_of, error, plain_text, read_json_object
from handlers.orders import CHANNELS, OrderIn, apply_order

SIGNATURE_HEADER = "X-Memberbot-Signature"


def signature_ok(secret: str | None, body: bytes, header: str) -> bool:
    if not secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = header[len("sha256=") :].strip().lower()
    # compare_digest refuses non-ASCII text with a TypeError: such a header is simply wrong.
    return given.isascii() and hmac.compare_digest(given, expected)


def parse_order(data: dict[str, Any], max_amount: int) -> OrderIn | str:
    """The order, or the reason it cannot be accepted (answered 422)."""
    order_id, channel = data.get("order_id"), data.get("channel")
    external_id, currency, status = (
        data.get("external_id"),
        data.get("currency"),
        data.get("status"),
    )
    if not isinstance(order_id, str) or not 1 <= len(order_id) <= 64 or not plain_text(order_id):
        return "order_id must be text of 1 to 64 characters"
    if channel not in CHANNELS:
        return f"channel must be one of {', '.join(CHANNELS)}"
    if (
        not isinstance(external_id, str)
        or not 1 <= len(external_id) <= 128
        or not plain_text(external_id)
    ):
        return "external_id must be text of 1 to 128 characters"
    if not isinstance(currency, str) or not 1 <= len(currency) <= 8 or not plain_text(currency):
        return "currency must be text of 1 to 8 characters"
    if status not in ("paid", "refunded"):
        return "status must be paid or refunded"
    raw = data.get("amount")
    if not isinstance(raw, str) or len(raw) > 32:
        return 'amount must be a decimal string such as "99.50"'
    if not raw.strip().isascii() or "_" in raw:  # Decimal() also takes "1_000" and "٥"
        return 'amount must be a decimal string such as "99.50"'
    try:
        amount = Decimal(raw.strip())
    except InvalidOperation:
        return 'amount must be a decimal string such as "99.50"'
    if not amount.is_finite() or amount <= 0:
        return "amount must be a positive number"
    if amount > max_amount:
        return f"amount must not exceed {max_amount}"
    if amount != amount.quantize(Decimal("0.01")):
        return "amount has more than two decimal places"
    return OrderIn(order_id, str(channel), external_id, amount, currency, str(status))


async def post_order(request: web.Request) -> web.Response:
    services = core_of(request).services
    body = await request.read()
    if not signature_ok(
        services.settings.shop_secret, body, request.headers.get(SIGNATURE_HEADER, "")
    ):
        return error(403, "bad or missing signature")
    _, data = await read_json_object(request)
    order = parse_order(data, services.rules.limits.max_order_amount)
    if isinstance(order, str):
        return error(422, order)
    outcome = await apply_order(services, order)
    return web.json_response(
        {
            "order_id": outcome.order_id,
            "member_id": outcome.member_id,
            "result": outcome.result,
            "points": outcome.points,
            "growth": outcome.growth,
            "tier": outcome.tier,
        }
    )


def setup(app: web.Application) -> None:
    app.router.add_post("/api/orders", post_order)
