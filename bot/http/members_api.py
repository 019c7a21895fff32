"""Operator API over members: read a member and their ledger, adjust points (bearer token)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.core.clock import local_day
from bot.http.common import bearer_ok, core_of, error, plain_text, read_json_object
from storage import checkins, ledger, members
from storage.db import once_more_if_needed
from storage.errors import InsufficientPoints
from storage.models import LedgerEntry, Member

MAX_LEDGER_PAGE = 1000


@web.middleware
async def require_admin(request: web.Request, handler: Any) -> web.StreamResponse:
    # Every operator route under /api/ needs the token; the shop's orders are signed instead.
    operator = request.path.startswith("/api/") and request.path != "/api/orders"
    if operator and not bearer_ok(request, core_of(request).services.settings.admin_token):
        return error(401, "missing or wrong bearer token")
    response: web.StreamResponse = await handler(request)
    return response


async def _member(request: web.Request) -> Member:
    services = core_of(request).services
    if not plain_text(request.match_info["external_id"]):
        raise web.HTTPNotFound(text='{"error": "unknown member"}', content_type="application/json")
    async with services.db.reader() as session:
        found = await members.find_by_identity(
            session, request.match_info["channel"], request.match_info["external_id"]
        )
    if found is None:
        raise web.HTTPNotFound(text='{"error": "unknown member"}', content_type="application/json")
    return found


async def _adjust(request: web.Request, amount: int, reason: str, key: str) -> ledger.Movement:
    """The adjustment; once more (as the merged member) if the accounts were linked meanwhile
    or PostgreSQL aborted it to break a deadlock."""
    services = core_of(request).services

    async def for_member() -> ledger.Movement:
        member = await _member(request)
        async with services.db.transaction() as session:
            return await ledger.adjust(
                session,
                member.id,
                amount,
                reason,
                f"adjust:{member.id}:{key}",
                services.clock.now(),
                expiry_days=services.rules.points.expiry_days,
            )

    return await once_more_if_needed(for_member)


async def get_member(request: web.Request) -> web.Response:
    services = core_of(request).services
    member = await _member(request)
    today = local_day(services.clock.now(), services.settings.tz)
    async with services.db.reader() as session:
        streak = await checkins.current_streak(session, member.id, today)
        identities = await members.identities_of(session, member.id)
    return web.json_response(
        {
            "id": member.id,
            "points": member.points,
            "growth": member.growth,
            "tier": member.tier,
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
    )


def _entry_json(entry: LedgerEntry) -> dict[str, Any]:
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


async def get_ledger(request: web.Request) -> web.Response:
    services = core_of(request).services
    member = await _member(request)
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        return error(400, "limit must be a whole number")
    if not 1 <= limit <= MAX_LEDGER_PAGE:
        return error(400, f"limit must be between 1 and {MAX_LEDGER_PAGE}")
    async with services.db.reader() as session:
        entries = await ledger.recent(session, member.id, limit)
    return web.json_response([_entry_json(e) for e in entries])


async def adjust_points(request: web.Request) -> web.Response:
    services = core_of(request).services
    _, data = await read_json_object(request)
    amount, reason, key = data.get("amount"), data.get("reason"), data.get("idempotency_key")
    limit = services.rules.points.max_adjustment
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
        return error(422, "amount must be a non-zero whole number")
    if abs(amount) > limit:
        return error(422, f"amount must be within ±{limit}")
    if not isinstance(reason, str) or not 1 <= len(reason.strip()) <= 64 or not plain_text(reason):
        return error(422, "reason must be text of 1 to 64 characters")
    if not isinstance(key, str) or not 1 <= len(key) <= 120 or not plain_text(key):
        return error(422, "idempotency_key must be text of 1 to 120 characters")
    try:
        moved = await _adjust(request, amount, reason.strip(), key)
    except InsufficientPoints as exc:
        return error(
            409,
            "adjustment would take the balance below zero",
            balance=exc.balance,
            requested=amount,
        )
    return web.json_response(
        {"applied": moved.applied, "amount": moved.amount, "balance": moved.balance}
    )


def setup(app: web.Application) -> None:
    app.middlewares.append(require_admin)
    base = "/api/members/{channel}/{external_id}"
    app.router.add_get(base, get_member)
    app.router.add_get(base + "/ledger", get_ledger)
    app.router.add_post(base + "/points", adjust_points)
