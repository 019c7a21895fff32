"""The shapes in GET /api/openapi.json: the JSON of every answer and request body of /api."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


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


OBJECT: Schema = {"type": "object"}
STATS_KEYS = (
    "period",
    "members",
    "checkins",
    "points",
    "invites",
    "flash_sales",
    "redemptions",
    "complaints",
    "orders",
)

SCHEMAS: dict[str, Schema] = {
    "Error": obj({"error": STRING}, {"field": STRING}),
    "OutboxItem": obj(
        {
            "id": INTEGER,
            "channel": STRING,
            "kind": STRING,
            "state": {"type": "string", "enum": ["pending", "sent", "failed"]},
            "attempts": INTEGER,
            "error": nullable(STRING),
        },
        {"member_id": nullable(INTEGER), "created_at": TIME, "next_attempt_at": TIME},
    ),
    "BirthdayInput": obj({"birthday": nullable(STRING)}, {"by": STRING}),
    "BirthdayChange": obj({"birthday": nullable(STRING), "previous": nullable(STRING)}),
    "Ticket": obj(
        {
            "number": STRING,
            "state": {
                "type": "string",
                "enum": ["open", "assigned", "waiting", "resolved", "closed"],
            },
            "category": nullable(STRING),
            "member": INTEGER,
            "assignee": nullable(obj({"member_id": INTEGER, "name": nullable(STRING)})),
            "created_at": TIME,
            "first_response_due": nullable(TIME),
            "first_response_at": nullable(TIME),
            "escalated": BOOLEAN,
            "score": nullable(INTEGER),
        },
        {
            "refers_to": nullable(STRING),
            "messages": {
                "type": "array",
                "items": obj({"at": TIME, "from": STRING, "text": nullable(STRING)}),
            },
            "events": {
                "type": "array",
                "items": obj({"at": TIME, "actor": nullable(STRING), "action": STRING}),
            },
        },
    ),
    "TicketStep": obj({}, {"text": STRING, "by": STRING}),
    "TicketAssign": obj({"staff": ref("Identity")}, {"by": STRING}),
    "Reward": obj(
        {
            "slug": STRING,
            "kind": {"type": "string", "enum": ["voucher", "lottery"]},
            "names": OBJECT,
            "cost": INTEGER,
            "stock": nullable(INTEGER),
            "active": BOOLEAN,
        },
        {
            "redeemed": INTEGER,
            "per_member_limit": nullable(INTEGER),
            "min_tier": nullable(STRING),
            "valid_days": nullable(INTEGER),
            "prizes": {"type": "array", "items": OBJECT},
        },
    ),
    "RewardInput": OBJECT,
    "Voucher": obj(
        {
            "code": STRING,
            "reward": STRING,
            "member_id": INTEGER,
            "state": STRING,
            "expires_at": TIME,
        },
        {"cost": INTEGER, "issued_at": TIME, "used_at": nullable(TIME)},
    ),
    "Event": obj({"event_id": STRING, "channel": CHANNEL, "external_id": STRING, "type": STRING}),
    "EventOutcome": OBJECT,
    "FlashSale": obj(
        {
            "code": STRING,
            "title": STRING,
            "price": STRING,
            "stock": INTEGER,
            "claimed": INTEGER,
            "remaining": INTEGER,
            "per_member_limit": INTEGER,
            "starts_at": TIME,
            "ends_at": TIME,
            "state": STRING,
        },
        {"community": nullable(STRING), "min_tier": nullable(STRING)},
    ),
    "FlashSaleInput": OBJECT,
    "Claim": obj(
        {"claim_code": STRING, "sale": STRING, "member_id": INTEGER, "used": BOOLEAN},
        {"claimed_at": TIME},
    ),
    # The figures by subject; the README's "Dashboard and stats" says what each one counts.
    "Stats": obj({key: OBJECT for key in STATS_KEYS}, {"campaigns": OBJECT, "benefits": OBJECT}),
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
            "reward_voucher": nullable(STRING),
            "send_at": nullable(TIME),
            "dry_run": BOOLEAN,
        },
    ),
    "CampaignPreview": obj(
        {"segment": ref("Segment"), "recipients": INTEGER},
        {"reward_voucher": STRING, "vouchers_left": nullable(INTEGER)},
    ),
    "Campaign": obj(
        {
            "id": INTEGER,
            "name": STRING,
            "state": {"type": "string", "enum": ["scheduled", "sending", "sent"]},
            "segment": ref("Segment"),
            "texts": LOCALE_TEXTS,
            "reward_points": INTEGER,
            "reward_voucher": nullable(STRING),
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
            "redeemed": INTEGER,
        }
    ),
}


EXAMPLES: dict[str, Schema] = {
    "BirthdayInput": {"birthday": "05-20", "by": "alice at the till"},
    "RewardInput": {"names": {"en": "Coffee voucher"}, "cost": 100, "stock": 10},
    "Event": {"event_id": "E-1", "channel": "console", "external_id": "alice", "type": "review"},
    "FlashSaleInput": {
        "community": "coffee",
        "title": "Beans 1 kg",
        "price": "49.00",
        "stock": 20,
        "per_member_limit": 1,
        "duration_minutes": 60,
    },
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
