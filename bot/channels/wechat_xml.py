"""WeChat's message XML: parsing untrusted bodies, the checks wechatpy skips, reading fields.

A message is checked and read from the same parsed tree (one parser): a second parser could
read the same bytes differently (xmltodict turns `<FromUserName a="1">` into a dict).
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from bot.core.messages import usable_id

MESSAGE_TYPES = {"text", "image", "voice", "video", "shortvideo", "location", "link"}
# Fields read from a message; each must be one element holding text, without attributes.
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
QR_SCENE = "qrscene_"  # EventKey prefix of a subscribe through a parametric QR code
PRODUCT_SCANS = ("scanbarcode|", "scanimage|")


class BadRequest(Exception):
    pass


def parse_xml(body: bytes) -> Element:
    """Parse untrusted XML: DTDs, entities and external references are refused outright."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    # LookupError: an XML declaration naming an encoding Python does not know.
    except (ParseError, DefusedXmlException, ValueError, LookupError) as exc:
        raise BadRequest(f"unusable XML: {type(exc).__name__}") from exc
    if root.tag != "xml":
        raise BadRequest("root element is not <xml>")
    return root


def check_message(root: Element) -> None:
    """A sender and a type, and the fields the adapter reads as single text elements."""
    for tag in TEXT_FIELDS:
        found = root.findall(tag)
        if len(found) > 1 or any(len(element) or element.attrib for element in found):
            raise BadRequest(f"{tag} is not a single text element")
    for tag in ("FromUserName", "MsgType"):
        if not (root.findtext(tag) or "").strip():
            raise BadRequest(f"no {tag}")
    openid = (root.findtext("FromUserName") or "").strip()
    if not usable_id(openid):  # WeChat's openids have 28 characters
        raise BadRequest("FromUserName is not an openid")


@dataclass(frozen=True)
class WeChatMessage:
    """What the adapter reads from a checked message (wechatpy's names: source, target...)."""

    source: str  # the follower's openid
    target: str  # the Official Account
    type: str  # MsgType, lower case: text, image, ..., event
    event: str = ""  # Event, lower case; subscribe through a QR code is "subscribe_scan"
    key: str = ""  # EventKey (a CLICK's menu key)
    scene_id: str = ""  # the QR code's scene (EventKey without "qrscene_")
    content: str = ""
    media_id: str = ""


def read_message(root: Element) -> WeChatMessage:
    """Read a message that `check_message` accepted."""
    check_message(root)

    def text(tag: str) -> str:
        return root.findtext(tag) or ""

    kind = text("MsgType").strip().lower()
    event = text("Event").strip().lower() if kind == "event" else ""
    key = text("EventKey")
    scene = key if event == "scan" else ""
    if event == "subscribe" and key.startswith(QR_SCENE):
        event, scene = "subscribe_scan", key[len(QR_SCENE) :]
    elif event == "subscribe" and key.startswith(PRODUCT_SCANS):
        event = "subscribe_scan_product"
    return WeChatMessage(
        source=text("FromUserName").strip(),
        target=text("ToUserName"),
        type=kind,
        event=event,
        key=key,
        scene_id=scene,
        content=text("Content"),
        media_id=text("MediaId"),
    )


def delivery_id(root: Element) -> str:
    """MsgId for messages; sender + CreateTime + Event + EventKey for events (no MsgId).

    The EventKey tells apart menu taps within one second (CHECKIN then POINTS).
    """
    msg_id = root.findtext("MsgId")
    if msg_id:
        return f"msg:{msg_id}"
    tags = ("FromUserName", "CreateTime", "Event", "EventKey")
    return "event:" + ":".join(root.findtext(tag) or "" for tag in tags)
