"""Limits every HTTP door shares."""

from __future__ import annotations

import asyncio

from aiohttp import web

MAX_BODY = 64 * 1024  # webhooks and the API refuse larger bodies with 413
BODY_SECONDS = 15.0  # a body must arrive within this; a client trickling it gets 408


async def read_body(request: web.Request) -> bytes:
    """The request's body, within BODY_SECONDS of asking for it (else 408 Request Timeout):
    the server's idle timer stops once a request head is in, the body needs its own bound."""
    try:
        return await asyncio.wait_for(request.read(), BODY_SECONDS)
    except TimeoutError:
        raise web.HTTPRequestTimeout() from None
