"""WeChat's side of the webhook, built the way its servers build requests, plus the API fake.

`WeChatServer` posts XML to the running app in plain, compatible or safe mode, signs the query
(signature; msg_signature over the ciphertext) and, in safe mode, checks and decrypts the
reply with its own implementation of Tencent's format (not the code under test).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import struct
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import update

from bot.app import Core, build_core
from bot.channels.wechat import WeChatChannel
from bot.core.clock import FixedClock
from bot.core.messages import Inbound, Reply
from bot.http.server import create_app
from bot.settings import Settings
from storage import identities, ledger, members
from storage.cache import Cache, Keys
from storage.models import Identity, Member
from tests.conftest import make_settings, sending_outbox
from tests.fakes.wechat import APPID, SECRET, FakeWeChat

TOKEN = "memberbot-wechat-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ACCOUNT = "gh_0123456789ab"  # the Official Account's original id (ToUserName)
PAYLOADS = Path(__file__).parent / "payloads"

_ids = itertools.count(24_000_000_000_000_000)
_times = itertools.count(int(time.time()))


def sha1_signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the parts sorted as strings and concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _aes(key: str) -> Cipher[modes.CBC]:
    raw = base64.b64decode(key + "=")
    return Cipher(algorithms.AES(raw), modes.CBC(raw[:16]))


def wechat_encrypt(plain: str, *, key: str = AES_KEY, appid: str = APPID) -> str:
    """Tencent's format: AES-CBC(random16 + len + msg + AppID, PKCS#7 to 32 bytes), base64."""
    body = plain.encode()
    raw = secrets.token_bytes(16) + struct.pack(">I", len(body)) + body + appid.encode()
    pad = 32 - len(raw) % 32
    enc = _aes(key).encryptor()
    return base64.b64encode(enc.update(raw + bytes([pad]) * pad) + enc.finalize()).decode()


def wechat_decrypt(sealed: str, *, key: str = AES_KEY, appid: str = APPID) -> str:
    dec = _aes(key).decryptor()
    raw = dec.update(base64.b64decode(sealed)) + dec.finalize()
    raw = raw[: -raw[-1]]
    (length,) = struct.unpack(">I", raw[16:20])
    assert raw[20 + length :] == appid.encode(), "the reply is sealed for another AppID"
    return raw[20 : 20 + length].decode()


def payload(name: str, **fields: object) -> str:
    """A message as WeChat sends it, from tests/channels/payloads/<name>.xml."""
    defaults: dict[str, object] = {
        "account": ACCOUNT,
        "create_time": next(_times),
        "msg_id": next(_ids),
    }
    template = Template((PAYLOADS / f"{name}.xml").read_text(encoding="utf-8"))
    return template.substitute({**defaults, **fields})


@dataclass
class Answer:
    """The bot's HTTP answer; `xml` is the passive reply (decrypted and verified in safe mode)."""

    status: int
    body: str
    xml: str | None = None

    def field(self, tag: str) -> str | None:
        assert self.xml is not None, f"no passive reply: {self.status} {self.body!r}"
        return ET.fromstring(self.xml).findtext(tag)

    @property
    def content(self) -> str | None:
        return self.field("Content")


def _safe_body(plain_xml: str, sealed: str, mode: str) -> str:
    if mode == "compat":  # the plaintext fields and the ciphertext side by side
        return plain_xml.replace("</xml>", f"  <Encrypt><![CDATA[{sealed}]]></Encrypt>\n</xml>")
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<Encrypt><![CDATA[{sealed}]]></Encrypt></xml>"
    )


@dataclass
class WeChatServer:
    """What WeChat's servers do to our webhook; one per running app."""

    http: ClientSession
    channel: WeChatChannel
    inbounds: list[Inbound] = field(default_factory=list)
    token: str = TOKEN

    @property
    def core(self) -> Core:
        return self.channel.core

    def signed_query(self, **extra: str) -> dict[str, str]:
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
        return {
            "signature": sha1_signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            **extra,
        }

    async def verify(self, echostr: str, **override: str) -> Answer:
        query = {**self.signed_query(echostr=echostr), **override}
        async with self.http.get("/wechat", params=query) as resp:
            return Answer(resp.status, await resp.text())

    async def post(
        self,
        plain_xml: str,
        *,
        mode: str = "plain",
        openid: str | None = None,
        sealed: str | None = None,
        **override: str,
    ) -> Answer:
        """POST one message; `mode` plain, compat or safe; `override` replaces query fields."""
        if openid is None:
            openid = ET.fromstring(plain_xml).findtext("FromUserName") or ""
        query = self.signed_query(openid=openid)
        body = plain_xml
        if mode in ("compat", "safe"):
            sealed = wechat_encrypt(plain_xml) if sealed is None else sealed
            body = _safe_body(plain_xml, sealed, mode)
            query["encrypt_type"] = "aes"
            query["msg_signature"] = sha1_signature(
                self.token, query["timestamp"], query["nonce"], sealed
            )
        query.update(override)
        return await self.post_raw(body.encode(), query, encrypted=mode != "plain")

    async def post_raw(
        self, body: bytes, query: dict[str, str] | None = None, *, encrypted: bool = False
    ) -> Answer:
        query = self.signed_query() if query is None else query
        headers = {"Content-Type": "text/xml"}
        async with self.http.post("/wechat", params=query, data=body, headers=headers) as resp:
            text = await resp.text()
            status = resp.status
        assert "Traceback" not in text and 'File "' not in text, text
        if status != 200 or text == "success" or not text:
            return Answer(status, text)
        if not encrypted:
            return Answer(status, text, text)
        return Answer(status, text, self._open(text, query["nonce"]))

    def _open(self, reply: str, nonce: str) -> str:
        """Check a safe-mode reply's MsgSignature and nonce, then decrypt it."""
        root = ET.fromstring(reply)
        sealed = root.findtext("Encrypt") or ""
        timestamp = root.findtext("TimeStamp") or ""
        assert root.findtext("Nonce") == nonce
        assert root.findtext("MsgSignature") == sha1_signature(self.token, timestamp, nonce, sealed)
        return wechat_decrypt(sealed)

    async def text(
        self, openid: str, content: str, *, mode: str = "plain", **fields: Any
    ) -> Answer:
        return await self.post(payload("text", openid=openid, content=content, **fields), mode=mode)

    async def event(self, openid: str, event: str, **fields: Any) -> Answer:
        return await self.post(payload("event", openid=openid, event=event, **fields))

    async def click(self, openid: str, key: str, **fields: Any) -> Answer:
        return await self.post(payload("click", openid=openid, event_key=key, **fields))


def wechat_settings(
    backend: tuple[str, str | None], fake: FakeWeChat | None, **extra: object
) -> Settings:
    database_url, redis_url = backend
    values: dict[str, object] = {
        "wechat_token": TOKEN,
        "wechat_appid": APPID,
        "wechat_secret": SECRET,
        "wechat_aes_key": AES_KEY,
        "wechat_api_base": fake.url if fake is not None else "http://127.0.0.1:9",
        **extra,
    }
    return make_settings(database_url, redis_url, **values)


async def new_core(
    settings: Settings, clock: FixedClock, prefix: str | None = None, cache: Cache | None = None
) -> Core:
    return await build_core(
        settings,
        clock=clock,
        keys=Keys(prefix=prefix or f"mbtest:{uuid.uuid4().hex}"),
        migrate_sqlite=False,
        cache=cache,
    )


def channel_of(app: web.Application) -> WeChatChannel:
    """The WeChat channel that create_app mounted (the owner of the POST /wechat handler)."""
    for route in app.router.routes():
        resource = route.resource
        if route.method == "POST" and resource is not None and resource.canonical == "/wechat":
            owner = getattr(route.handler, "__self__", None)
            assert isinstance(owner, WeChatChannel)
            return owner
    raise AssertionError("POST /wechat is not mounted")


def record_inbounds(core: Core) -> list[Inbound]:
    """Every Inbound the core gets from now on, in order."""
    seen: list[Inbound] = []
    original = core.dispatcher.handle

    async def handle(msg: Inbound) -> Reply | None:
        seen.append(msg)
        return await original(msg)

    core.dispatcher.handle = handle  # type: ignore[method-assign]
    return seen


@pytest.fixture
async def fake_wechat() -> AsyncIterator[FakeWeChat]:
    fake = await FakeWeChat().start()
    yield fake
    await fake.close()


@pytest.fixture
async def wechat_core(
    backend: tuple[str, str | None], clock: FixedClock, fake_wechat: FakeWeChat
) -> AsyncIterator[Core]:
    core = await new_core(wechat_settings(backend, fake_wechat), clock)
    yield core
    await core.close()


ServeFn = Callable[[Core], Awaitable[WeChatServer]]


@pytest.fixture
async def serve() -> AsyncIterator[ServeFn]:
    """`await serve(core)`: the app of `memberbot serve` for that core on loopback."""
    opened: list[tuple[TestServer, ClientSession]] = []

    async def start(core: Core) -> WeChatServer:
        app = sending_outbox(create_app(core, background=False))
        channel = channel_of(app)
        channel.api.backoff = 0.001
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        session = ClientSession(base_url=str(server.make_url("/")))
        opened.append((server, session))
        return WeChatServer(session, channel, record_inbounds(core))

    yield start
    for server, session in reversed(opened):
        await session.close()
        await server.close()


@pytest.fixture
async def wechat(wechat_core: Core, serve: ServeFn) -> WeChatServer:
    return await serve(wechat_core)


class Probe:
    """What storage holds for a WeChat follower."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def member(self, openid: str) -> Member | None:
        async with self.core.services.db.sessions() as session:
            return await members.find_by_identity(session, "wechat", openid)

    async def balance(self, openid: str) -> int:
        found = await self.member(openid)
        if found is None:
            return 0
        async with self.core.services.db.sessions() as session:
            cached = await ledger.balance_of(session, found.id)
            assert cached == await ledger.ledger_sum(session, found.id)
            return cached

    async def identity(self, openid: str) -> Identity:
        async with self.core.services.db.sessions() as session:
            found = await identities.get(session, "wechat", openid)
        assert found is not None, f"no identity for {openid}"
        return found

    async def set_personal(self, openid: str, display_name: str, birthday: str) -> None:
        found = await self.member(openid)
        assert found is not None
        async with self.core.services.db.transaction() as session:
            await session.execute(
                update(Member)
                .where(Member.id == found.id)
                .values(display_name=display_name, birthday=birthday)
            )


@pytest.fixture
def probe(wechat_core: Core) -> Probe:
    return Probe(wechat_core)
