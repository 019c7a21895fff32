"""What the server does with connections that are not well-behaved HTTP clients.

- A malformed request (bad request line, header too long, bad chunking...) is answered
  400 "bad request" without echoing what was sent, and logged as one short WARNING line
  (aiohttp logs each at ERROR with a traceback and repeats the line in its answer).
- A connection that sends no complete request head within `IDLE_SECONDS` of connecting or
  of its last answer is closed: silent, trickling and idle keep-alive connections alike
  (aiohttp's keep-alive timer also runs from the connection's start).
- At most `MAX_CONNECTIONS` connections at once; beyond that new ones are closed at once.
- A body must arrive within `bot.http.limits.BODY_SECONDS` (408 otherwise; see read_body).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

log = logging.getLogger("memberbot.http")

IDLE_SECONDS = 15.0
MAX_CONNECTIONS = 1000
_WARN_EVERY = 60.0  # connections refused over the cap: one line a minute at most


class _Handler(RequestHandler):
    def __init__(self, manager: Server, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._max_connections = max_connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        manager = self._manager
        if isinstance(manager, _Server) and len(manager.connections) > self._max_connections:
            now = time.monotonic()
            if now - manager.last_cap_warning > _WARN_EVERY:
                manager.last_cap_warning = now
                log.warning("connection refused: %d connections open", self._max_connections)
            self.force_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError) and 400 <= status < 500:
            log.warning("malformed request refused status=%d reason=%s", status, type(exc).__name__)
            answer = web.Response(status=status, text="bad request\n")
            answer.force_close()
            return answer
        return super().handle_error(request, status, exc, message)


class _Server(Server):
    last_cap_warning = -_WARN_EVERY

    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """`web.AppRunner` whose connections get the treatment above."""

    def __init__(
        self,
        app: web.Application,
        *,
        idle_seconds: float = IDLE_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            app,
            keepalive_timeout=idle_seconds,
            # After an early answer (413, 408), the rest of a body is read and dropped for at
            # most this long, not aiohttp's 10 s: a trickling client holds nothing for long.
            lingering_time=1.0,
            max_connections=max_connections,
            **kwargs,
        )

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = _Server  # the same server; only its connections' handler differs
        return server
