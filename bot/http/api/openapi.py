"""GET /api/openapi.json: every /api route, its request and response shapes and its errors.

Written by hand next to the routes; tests/http/test_openapi.py fails when a registered /api
route is missing here, and runs schemathesis against the server to keep the shapes honest.
A feature adding /api routes adds its paths here and its shapes to bot/http/api/schemas.py.
"""

from __future__ import annotations

from aiohttp import web

from bot.http.api.schemas import CHANNEL, EXAMPLES, SCHEMAS, STRING, Schema, listing, ref
from bot.http.common import json_answer

ERRORS = {
    400: "malformed JSON, or not a JSON object",
    401: "missing or wrong bearer token",
    403: "missing or wrong signature",
    404: "unknown member, community, campaign...",
    409: "valid, but the state of things refuses it",
    422: "a bad field, named in `field`",
}


def op(
    summary: str,
    answers: dict[int, Schema | None],
    errors: tuple[int, ...],
    *,
    body: str | None = None,
    query: tuple[Schema, ...] = (),
    signed: bool = False,
) -> Schema:
    """One operation: its answers by status, the errors it can give, body and query."""
    codes = (400, 403, *errors) if signed else (401, *errors)
    responses: dict[str, Schema] = {}
    for status, schema in answers.items():
        content = {"application/json": {"schema": schema}} if schema is not None else {}
        responses[str(status)] = {"description": "done", "content": content}
    for status in sorted(set(codes) | ({400} if body else set())):
        responses[str(status)] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": ref("Error")}},
        }
    operation: Schema = {"summary": summary, "responses": responses}
    if body is not None:
        media: Schema = {"schema": ref(body)}
        if body in EXAMPLES:
            media["example"] = EXAMPLES[body]
        operation["requestBody"] = {"required": True, "content": {"application/json": media}}
    if query:
        operation["parameters"] = list(query)
    if signed:
        operation["security"] = [{"shopSignature": []}]
    return operation


def path_param(name: str, example: str, schema: Schema = STRING) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema, "example": example}


def query_param(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema}


LIMIT = query_param("limit", {"type": "integer", "minimum": 1, "maximum": 1000})
CAMPAIGN_LIMIT = query_param("limit", {"type": "integer", "minimum": 1, "maximum": 500})
ACCOUNT = (path_param("channel", "console", CHANNEL), path_param("external_id", "alice"))
MEMBER = "/api/members/{channel}/{external_id}"

PATHS: dict[str, dict[str, Schema]] = {
    "/api/openapi.json": {
        "get": op("This description", {200: {"type": "object"}}, ()),
    },
    "/api/orders": {
        "post": op(
            "A paid or refunded order from the shop (signed)",
            {200: ref("OrderOutcome")},
            (409, 422),
            body="Order",
            signed=True,
        ),
    },
    MEMBER: {
        "get": op("A member", {200: ref("Member")}, (404,)),
        "delete": op("Erase the member's personal data", {200: ref("Erased")}, (404,)),
    },
    MEMBER + "/ledger": {
        "get": op(
            "Ledger entries, newest first",
            {200: listing("LedgerEntry")},
            (404, 422),
            query=(LIMIT,),
        ),
    },
    MEMBER + "/points": {
        "post": op(
            "Manual adjustment, once per idempotency key",
            {200: ref("Adjusted")},
            (404, 409, 422),
            body="Adjustment",
        ),
    },
    MEMBER + "/export": {
        "get": op("Everything kept about the member", {200: ref("MemberExport")}, (404,)),
    },
    "/api/communities": {
        "get": op("Every community", {200: listing("Community")}, ()),
    },
    "/api/communities/{slug}": {
        "get": op("A community", {200: ref("Community")}, (404,)),
        "put": op(
            "Create or change a community",
            {200: ref("Community"), 201: ref("Community")},
            (404, 409, 422),
            body="CommunityInput",
        ),
        "delete": op("Archive a community", {200: ref("Community")}, (404,)),
    },
    "/api/roles": {
        "get": op("Every role held", {200: listing("Role")}, ()),
        "post": op(
            "Grant a role",
            {200: ref("Role"), 201: ref("Role")},
            (404, 422),
            body="RoleInput",
        ),
        "delete": op("Revoke a role", {200: ref("Role")}, (404, 422), body="RoleInput"),
    },
    "/api/invites": {
        "get": op(
            "Invites in one state (default: review)",
            {200: listing("Invite")},
            (422,),
            query=(query_param("status", STRING),),
        ),
    },
    "/api/invites/{invite_id}/approve": {
        "post": op("Approve a held invite reward", {200: ref("Invite")}, (404, 409)),
    },
    "/api/invites/{invite_id}/reject": {
        "post": op("Reject a held invite reward", {200: ref("Invite")}, (404, 409)),
    },
    MEMBER + "/birthday": {
        "put": op(
            "Correct the member's birthday (MM-DD, or null to clear), kept in the audit log",
            {200: ref("BirthdayChange")},
            (404, 422),
            body="BirthdayInput",
        ),
    },
    "/api/outbox": {
        "get": op(
            "Pushes newest first, in one state (a push held for WeChat's window is pending)",
            {200: listing("OutboxItem")},
            (422,),
            query=(
                query_param("state", {"type": "string", "enum": ["pending", "sent", "failed"]}),
                query_param("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                query_param("before", {"type": "integer", "minimum": 1}),
            ),
        ),
    },
    "/api/stats": {
        "get": op(
            "The dashboard's figures over the last `days` days (default 30)",
            {200: ref("Stats")},
            (422,),
            query=(query_param("days", {"type": "integer", "minimum": 1, "maximum": 366}),),
        ),
    },
    "/api/tickets": {
        "get": op(
            "Tickets (all, or in one state), the soonest first-response deadline first",
            {200: listing("Ticket")},
            (422,),
            query=(query_param("state", STRING),),
        ),
    },
    "/api/tickets/{number}": {
        "get": op("A ticket with its conversation and audit trail", {200: ref("Ticket")}, (404,)),
    },
    **{
        f"/api/tickets/{{number}}/{step}": {
            "post": op(
                f"{step.capitalize()} a ticket; the member is told in their app",
                {200: ref("Ticket")},
                (404, 409, 422),
                body="TicketAssign" if step == "assign" else "TicketStep",
            ),
        }
        for step in ("assign", "reply", "wait", "resolve")
    },
    "/api/events": {
        "post": op(
            "Another deed from the shop (a review, a share), credited once per event_id",
            {200: ref("EventOutcome")},
            (409, 422),
            body="Event",
            signed=True,
        ),
    },
    "/api/rewards": {
        "get": op("Every reward of the points mall", {200: listing("Reward")}, ()),
    },
    "/api/rewards/{slug}": {
        "get": op("A reward", {200: ref("Reward")}, (404,)),
        "put": op(
            "Create (201) or change (200) a reward",
            {200: ref("Reward"), 201: ref("Reward")},
            (404, 409, 422),
            body="RewardInput",
        ),
        "delete": op("Retire a reward", {200: ref("Reward")}, (404,)),
    },
    "/api/vouchers/{code}": {
        "get": op("A voucher and its state", {200: ref("Voucher")}, (404,)),
    },
    "/api/vouchers/{code}/use": {
        "post": op("Use a voucher once at the till", {200: ref("Voucher")}, (404, 409)),
    },
    "/api/vouchers/{code}/cancel": {
        "post": op(
            "Cancel a voucher: points and the unit go back", {200: ref("Voucher")}, (404, 409)
        ),
    },
    MEMBER + "/vouchers": {
        "get": op("The member's vouchers, newest first", {200: listing("Voucher")}, (404,)),
    },
    "/api/flashsales": {
        "get": op(
            "Flash sales, latest start first (optionally in one state)",
            {200: listing("FlashSale")},
            (422,),
            query=(query_param("state", STRING),),
        ),
        "post": op(
            "Create a flash sale", {201: ref("FlashSale")}, (404, 422), body="FlashSaleInput"
        ),
    },
    "/api/flashsales/{code}": {
        "get": op("A flash sale", {200: ref("FlashSale")}, (404,)),
    },
    "/api/flashsales/{code}/claims": {
        "get": op("The sale's won claims", {200: listing("Claim")}, (404,)),
    },
    "/api/flashsales/{code}/cancel": {
        "post": op("Cancel a sale (409 when it ended)", {200: ref("FlashSale")}, (404, 409)),
    },
    "/api/claims/{claim_code}": {
        "get": op("Check a won claim at the till", {200: ref("Claim")}, (404,)),
    },
    "/api/claims/{claim_code}/use": {
        "post": op("Use a claim once (409 when used)", {200: ref("Claim")}, (404, 409)),
    },
    "/api/campaigns": {
        "get": op(
            "The newest campaigns", {200: listing("Campaign")}, (422,), query=(CAMPAIGN_LIMIT,)
        ),
        "post": op(
            "Create a campaign (sent now unless send_at is later), or preview with dry_run",
            {201: ref("Campaign"), 200: ref("CampaignPreview")},
            (422,),
            body="CampaignInput",
        ),
    },
    "/api/campaigns/{id}": {
        "get": op("A campaign and its results", {200: ref("Campaign")}, (404,)),
    },
}
_PARAMS = {
    MEMBER: ACCOUNT,
    MEMBER + "/ledger": ACCOUNT,
    MEMBER + "/points": ACCOUNT,
    MEMBER + "/export": ACCOUNT,
    MEMBER + "/birthday": ACCOUNT,
    "/api/communities/{slug}": (path_param("slug", "coffee"),),
    "/api/invites/{invite_id}/approve": (path_param("invite_id", "1"),),
    "/api/invites/{invite_id}/reject": (path_param("invite_id", "1"),),
    "/api/campaigns/{id}": (path_param("id", "1"),),
    "/api/tickets/{number}": (path_param("number", "C-000001"),),
    MEMBER + "/vouchers": ACCOUNT,
    "/api/rewards/{slug}": (path_param("slug", "coffee"),),
    "/api/flashsales/{code}": (path_param("code", "FS1"),),
    "/api/flashsales/{code}/claims": (path_param("code", "FS1"),),
    "/api/flashsales/{code}/cancel": (path_param("code", "FS1"),),
    "/api/claims/{claim_code}": (path_param("claim_code", "C1"),),
    "/api/claims/{claim_code}/use": (path_param("claim_code", "C1"),),
    "/api/vouchers/{code}": (path_param("code", "V-AAAA"),),
    "/api/vouchers/{code}/use": (path_param("code", "V-AAAA"),),
    "/api/vouchers/{code}/cancel": (path_param("code", "V-AAAA"),),
    **{
        f"/api/tickets/{{number}}/{step}": (path_param("number", "C-000001"),)
        for step in ("assign", "reply", "wait", "resolve")
    },
}


def document() -> Schema:
    paths = {
        path: ({"parameters": list(_PARAMS[path])} if path in _PARAMS else {}) | operations
        for path, operations in PATHS.items()
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "memberbot operator API",
            "version": "1",
            "description": "Every route needs `Authorization: Bearer <MEMBERBOT_ADMIN_TOKEN>` "
            "but POST /api/orders, which needs `X-Memberbot-Signature: sha256=<hex HMAC-SHA256 "
            'of the body under MEMBERBOT_SHOP_SECRET>`. Errors are `{"error": ..., "field"?}`.',
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "shopSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Memberbot-Signature",
                },
            },
        },
        "security": [{"bearer": []}],
    }


async def get_document(request: web.Request) -> web.StreamResponse:
    return json_answer(document())


def setup(api: web.Application) -> None:
    api.router.add_get("/openapi.json", get_document)
