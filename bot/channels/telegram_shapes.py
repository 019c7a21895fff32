"""Shapes of Telegram updates: what PTB's lenient `de_json` lets through must still fit.

`Update.de_json` keeps whatever a field holds: `{"from": {"id": "abc"}}` would become the
member "abc", `{"id": [1]}` an unhashable key in the per-member flow, a string chat id a
crash in the sender after the 200. Only a holder of the webhook secret can send such an
update; it is refused before it is queued, with one WARNING.
"""

from __future__ import annotations

from typing import Any

# Objects that name a person or chat: each must carry a whole-number id.
IDENTIFIED = ("from", "user", "chat", "sender_chat", "forward_from", "via_bot")
TEXTS = (
    "text",
    "caption",
    "data",
    "language_code",
    "first_name",
    "last_name",
    "username",
    "type",
    "status",
    "file_id",
    "title",
    "chat_instance",
)
FLAGS = ("is_bot", "is_member")
WHOLE = ("message_id", "date", "user_chat_id", "offset", "length", "update_id")
LISTS = ("photo", "entities")
MAX_ID = 2**63 - 1


class Malformed(Exception):
    """The update does not have the shape Telegram gives it; the message names the field."""


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_ID


def _check(key: str, value: object) -> None:
    if key in IDENTIFIED and not (isinstance(value, dict) and _whole(value.get("id"))):
        raise Malformed(f"{key}.id")
    if key in TEXTS and value is not None and not isinstance(value, str):
        raise Malformed(key)
    if key in FLAGS and not isinstance(value, bool):
        raise Malformed(key)
    if key in WHOLE and not _whole(value):
        raise Malformed(key)
    if key in LISTS and not (
        isinstance(value, list) and all(isinstance(item, dict) for item in value)
    ):
        raise Malformed(key)
    if key == "invite_link" and not isinstance(value, (str, dict)):
        raise Malformed(key)
    if key == "callback_query" and not (
        isinstance(value, dict) and isinstance(value.get("id"), str) and "from" in value
    ):
        raise Malformed(key)
    if key in ("message", "chat_member", "my_chat_member", "chat_join_request") and not (
        isinstance(value, dict) and "chat" in value
    ):
        raise Malformed(key)
    if key in ("new_chat_member", "old_chat_member") and not (
        isinstance(value, dict) and "user" in value and "status" in value
    ):
        raise Malformed(key)


def check_update(data: Any) -> int:
    """The update's id if every field the bot reads has Telegram's type; else Malformed."""
    if not isinstance(data, dict) or not _whole(data.get("update_id")):
        raise Malformed("update_id")
    # Iterative: a deeply nested body must not exhaust the stack here either.
    pending: list[Any] = [data]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                _check(key, value)
                if isinstance(value, (dict, list)):
                    pending.append(value)
        elif isinstance(node, list):
            pending.extend(item for item in node if isinstance(item, (dict, list)))
    return int(data["update_id"])
