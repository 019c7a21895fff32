"""WeChat's message XML: parsing untrusted bodies, the checks wechatpy skips, passive replies."""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

MESSAGE_TYPES = {"text", "image", "voice", "video", "shortvideo", "location", "link"}
# Fields read from a message; each must be one element holding text.
TEXT_FIELDS = (
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "MsgId",
    "Event",
    "EventKey",
    "Content",
    "MediaId",
)


class BadRequest(Exception):
    pass


def parse_xml(body: bytes) -> Element:
    """Parse untrusted XML: DTDs, entities and external references are refused outright."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise BadRequest(f"unusable XML: {type(exc).__name__}") from exc
    if root.tag != "xml":
        raise BadRequest("root element is not <xml>")
    return root


def check_message(root: Element) -> None:
    """A sender and a type, and the fields the adapter reads as single text elements.

    wechatpy (xmltodict) turns a repeated or nested element into a list or dict and then
    fails on `.lower()`; an absent sender would become the openid "None".
    """
    for tag in TEXT_FIELDS:
        found = root.findall(tag)
        if len(found) > 1 or any(len(element) for element in found):
            raise BadRequest(f"{tag} is not a single text element")
    for tag in ("FromUserName", "MsgType"):
        if not (root.findtext(tag) or "").strip():
            raise BadRequest(f"no {tag}")


def delivery_id(root: Element) -> str:
    """MsgId for messages; FromUserName + CreateTime + Event for events (they have no MsgId)."""
    msg_id = root.findtext("MsgId")
    if msg_id:
        return f"msg:{msg_id}"
    parts = (root.findtext(tag) or "" for tag in ("FromUserName", "CreateTime", "Event"))
    return "event:" + ":".join(parts)
