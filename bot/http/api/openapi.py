"""GET /api/openapi.json: every /api route, its request and response shapes and its errors.

Written by hand next to the routes; tests/http/test_openapi.py fails when a registered /api
route is missing here, and runs schemathesis against the server to keep the shapes honest.
A feature adding /api routes adds its paths (and schemas) to PATHS and SCHEMAS here.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.http.common import json_answer

Schema = dict[str, Any]

ERRORS = {
    400: "malformed JSON, or not a JSON object",
    401: "missing or wrong bearer token",
    403: "missing or wrong signature",
    404: "unknown member, community, campaign...",
    409: "valid, but the state of things refuses it",
    422: "a bad field, named in `field`",
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


STRING, INTEGER, BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
CHANNEL = {"type": "string", "enum": ["wechat", "telegram", "console"]}
LOCALE_TEXTS = {
    "type": "object",
    "properties": {k: STRING for k in ("zh_CN", "zh_TW", "en")},
    "additionalProperties": False,
}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with these properties (extra ones allowed: answers may grow)."""
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
    }


def listing(item: str) -> Schema:
    return {"type": "array", "items": ref(item)}


SCHEMAS: dict[str, Schema] = {
    "Error": obj({"error": STRING}, {"field": STRING}),
    "Identity": obj({"channel": STRING, "external_id": STRING}, {"unreachable": BOOLEAN}),
    "Member": obj(
        {
            "id": INTEGER,
            "points": INTEGER,
            "growth": INTEGER,
            "tier": STRING,
            "streak": INTEGER,
            "invite_code": STRING,
            "locale": STRING,
            "birthday": nullable(STRING),
            "created_at": TIME,
            "identities": listing("Identity"),
        }
    ),
    "LedgerEntry": obj(
        {
            "id": INTEGER,
            "kind": STRING,
            "amount": INTEGER,
            "reason": STRING,
            "idempotency_key": STRING,
            "created_at": TIME,
            "expires_at": nullable(TIME),
            "remaining": INTEGER,
        }
    ),
    "Adjustment": obj({"amount": INTEGER, "reason": STRING, "idempotency_key": STRING}),
    "Adjusted": obj({"applied": BOOLEAN, "amount": INTEGER, "balance": INTEGER}),
    "Community": obj(
        {
            "slug": STRING,
            "names": LOCALE_TEXTS,
            "tag": STRING,
            "min_tier": STRING,
            "telegram_chat_id": nullable(INTEGER),
            "wechat_qr": nullable(STRING),
            "description": STRING,
            "active": BOOLEAN,
            "members": INTEGER,
        }
    ),
    "CommunityInput": obj(
        {},
        {
            "names": LOCALE_TEXTS,
            "tag": STRING,
            "min_tier": STRING,
            "telegram_chat_id": nullable(INTEGER),
            "wechat_qr": nullable(STRING),
            "description": STRING,
            "active": BOOLEAN,
        },
    ),
    "Role": obj(
        {
            "member_id": INTEGER,
            "identities": listing("Identity"),
            "role": STRING,
            "community": nullable(STRING),
        }
    ),
    "RoleInput": obj(
        {
            "channel": CHANNEL,
            "external_id": STRING,
            "role": {"type": "string", "enum": ["admin", "staff", "moderator"]},
        },
        {"community": nullable(STRING)},
    ),
    "Invite": obj(
        {
            "id": INTEGER,
            "inviter_id": INTEGER,
            "invitee_id": INTEGER,
            "via": STRING,
            "status": STRING,
            "created_at": TIME,
            "decided_at": nullable(TIME),
            "reward_day": nullable(STRING),
        }
    ),
    "Order": obj(
        {
            "order_id": STRING,
            "channel": CHANNEL,
            "external_id": STRING,
            "amount": {"type": "string", "example": "99.50"},
            "currency": STRING,
            "status": {"type": "string", "enum": ["paid", "refunded"]},
        },
        {"refund_id": STRING},
    ),
    "OrderOutcome": obj(
        {
            "order_id": STRING,
            "member_id": INTEGER,
            "result": STRING,
            "points": INTEGER,
            "growth": INTEGER,
            "tier": STRING,
        },
        {"refund_id": nullable(STRING), "refunded": nullable(STRING)},
    ),
    "MemberExport": obj(
        {
            "member_id": INTEGER,
            "exported_at": TIME,
            "data": {
                "type": "object",
                "description": "table name -> the rows about the member",
                "additionalProperties": {"type": "array", "items": {"type": "object"}},
            },
        }
    ),
    "Erased": obj(
        {"member_id": INTEGER, "erased": BOOLEAN, "members": {"type": "array", "items": INTEGER}}
    ),
    "Segment": obj(
        {},
        {
            "tier": {
                "oneOf": [STRING, {"type": "array", "items": STRING, "minItems": 1}],
            },
            "community": STRING,
            "channel": CHANNEL,
            "dormant_days": {"type": "integer", "minimum": 1, "maximum": 3650},
            "birthday_month": {"type": "integer", "minimum": 1, "maximum": 12},
            "top_spend_percent": {"type": "integer", "minimum": 1, "maximum": 100},
        },
    ),
    "CampaignInput": obj(
        {},
        {
            "name": STRING,
            "segment": ref("Segment"),
            "texts": LOCALE_TEXTS,
            "reward_points": {"type": "integer", "minimum": 0},
            "send_at": nullable(TIME),
            "dry_run": BOOLEAN,
        },
    ),
    "CampaignPreview": obj({"segment": ref("Segment"), "recipients": INTEGER}),
    "Campaign": obj(
        {
            "id": INTEGER,
            "name": STRING,
            "state": {"type": "string", "enum": ["scheduled", "sending", "sent"]},
            "segment": ref("Segment"),
            "texts": LOCALE_TEXTS,
            "reward_points": INTEGER,
            "send_at": TIME,
            "created_at": TIME,
            "started_at": nullable(TIME),
            "finished_at": nullable(TIME),
            "recipients": INTEGER,
            "sent": INTEGER,
            "failed": INTEGER,
            "opted_out": INTEGER,
            "unreachable": INTEGER,
            "pending": INTEGER,
            "redeemed": nullable(INTEGER),
        }
    ),
}


EXAMPLES: dict[str, Schema] = {
    "Adjustment": {"amount": 100, "reason": "goodwill", "idempotency_key": "ticket-42"},
    "CommunityInput": {"names": {"en": "Coffee", "zh_CN": "咖啡"}, "min_tier": "bronze"},
    "RoleInput": {"channel": "console", "external_id": "alice", "role": "staff"},
    "CampaignInput": {
        "name": "spring",
        "segment": {"tier": "bronze", "channel": "console"},
        "texts": {"en": "Spring sale!", "zh_CN": "春季促销！"},
        "reward_points": 10,
    },
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
    "/api/communities/{slug}": (path_param("slug", "coffee"),),
    "/api/invites/{invite_id}/approve": (path_param("invite_id", "1"),),
    "/api/invites/{invite_id}/reject": (path_param("invite_id", "1"),),
    "/api/campaigns/{id}": (path_param("id", "1"),),
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
