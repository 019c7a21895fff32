"""Hypothesis strategies for what hostile clients send: XML, JSON, paths."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

FIELDS = (
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "MsgId",
    "Event",
    "EventKey",
    "Content",
    "MediaId",
    "Encrypt",
    "x",
)
MSG_TYPES = ("text", "event", "image", "voice", "location", "link", "TEXT", "", "event ")
EVENTS = ("subscribe", "unsubscribe", "SCAN", "CLICK", "LOCATION", "VIEW", "", "click")
ENCODINGS = ("utf-8", "UTF-8", "gbk", "latin-1", "utf-16", "x-no-such", "", "ascii")

# Text with the characters that break naive XML and ids: controls, "]]>", "<", "&", NUL.
nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["]]>", "<b>", "&amp;", "&#0;", "\x00", "\ud800", "o" * 200, " ", "签到"]),
    st.sampled_from(MSG_TYPES),
    st.sampled_from(EVENTS),
    st.sampled_from(["CHECKIN", "POINTS", "qrscene_ref_ABC", "ref_X", "HELP"]),
)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


@st.composite
def xml_element(draw: st.DrawFn) -> str:
    tag = draw(st.sampled_from(FIELDS))
    attrs = draw(st.sampled_from(["", ' a="1"', " b=''", ' xml:lang="en"']))
    text = _escape(draw(nasty_text))
    kind = draw(st.sampled_from(["text", "cdata", "empty", "nested"]))
    if kind == "cdata":
        body = f"<![CDATA[{text.replace(']]>', '')}]]>"
    elif kind == "empty":
        return f"<{tag}{attrs}/>"
    elif kind == "nested":
        body = f"<v>{text}</v>"
    else:
        body = text
    return f"<{tag}{attrs}>{body}</{tag}>"


@st.composite
def wechat_xml(draw: st.DrawFn) -> str:
    """Mostly well-formed messages with odd shapes; some broken on purpose."""
    root = draw(st.sampled_from(["xml", "xml", "xml", "root"]))
    parts = draw(st.lists(xml_element(), max_size=10))
    if draw(st.booleans()):  # a plausible core so deeper code runs
        parts[:0] = [
            "<FromUserName><![CDATA[oFuzz]]></FromUserName>",
            f"<MsgType>{draw(st.sampled_from(MSG_TYPES))}</MsgType>",
            f"<Event>{draw(st.sampled_from(EVENTS))}</Event>",
            f"<CreateTime>{draw(st.integers(-(2**70), 2**70))}</CreateTime>",
        ]
    declaration = ""
    if draw(st.booleans()):
        declaration = f'<?xml version="1.0" encoding="{draw(st.sampled_from(ENCODINGS))}"?>'
    text = f"{declaration}<{root}>{''.join(parts)}</{root}>"
    cut = draw(st.integers(0, 3))
    return text[: len(text) - cut * 7] if cut else text


raw_bytes = st.binary(max_size=300)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _valid_update(update_id: int, user_id: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1700000000,
            "chat": {"id": user_id, "type": "private", "first_name": "F"},
            "from": {"id": user_id, "is_bot": False, "first_name": "F", "language_code": "en"},
            "text": "/checkin",
        },
    }


PATHS = [
    ("message",),
    ("message", "chat"),
    ("message", "chat", "id"),
    ("message", "chat", "type"),
    ("message", "from"),
    ("message", "from", "id"),
    ("message", "from", "language_code"),
    ("message", "text"),
    ("message", "photo"),
    ("callback_query",),
    ("chat_member",),
    ("my_chat_member",),
    ("chat_join_request",),
    ("edited_message",),
    ("update_id",),
]


@st.composite
def telegram_update(draw: st.DrawFn) -> bytes:
    """A valid update with one or two fields replaced by arbitrary JSON, or raw junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(raw_bytes)
    update = _valid_update(draw(st.integers(1, 2**40)), draw(st.integers(1, 2**40)))
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(PATHS))
        node: Any = update
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[path[-1]] = draw(json_values)
    return json.dumps(update).encode()


ORDER_KEYS = ("order_id", "channel", "external_id", "amount", "currency", "status", "refund_id")


@st.composite
def order_body(draw: st.DrawFn) -> bytes:
    base: dict[str, Any] = {
        "order_id": "F-1",
        "channel": "telegram",
        "external_id": "1001",
        "amount": "9.90",
        "currency": "CNY",
        "status": "paid",
    }
    for key in draw(st.lists(st.sampled_from(ORDER_KEYS), max_size=3)):
        base[key] = draw(
            st.one_of(
                json_values,
                st.sampled_from(["1e9", "-1", "NaN", "9" * 40, "0.001", "\x00", "refunded"]),
            )
        )
    if draw(st.integers(0, 9)) == 0:
        return draw(raw_bytes)
    return json.dumps(base).encode()


segment = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["wechat", "telegram", "console", "%00", "%", "..", "%2F", "%ff", "o" * 300]),
)
path_tail = st.sampled_from(["", "/ledger", "/points", "/export", "/vouchers", "/x/y"])


@st.composite
def operator_request(draw: st.DrawFn) -> tuple[str, str, bytes | None]:
    method = draw(st.sampled_from(["GET", "POST", "DELETE", "PUT"]))
    channel, external_id = draw(segment), draw(segment)
    from urllib.parse import quote

    def enc(value: str) -> str:
        return value if value.startswith("%") or value == ".." else quote(value, safe="")

    prefix = draw(st.sampled_from(["/api/members", "/api/communities", "/api/roles", "/api"]))
    path = f"{prefix}/{enc(channel)}/{enc(external_id)}{draw(path_tail)}"
    body = json.dumps(draw(json_values)).encode() if method in ("POST", "PUT") else None
    return method, path, body
