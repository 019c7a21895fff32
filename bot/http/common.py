"""What every HTTP route shares: the core in the app, JSON answers and JSON request bodies."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.app import Core
from bot.core.context import Services
from bot.http.limits import read_body

CORE = web.AppKey("core", Core)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Chinese names and reasons stay readable in answers (no \\uXXXX escapes).
dumps = functools.partial(json.dumps, ensure_ascii=False)


class Malformed(Exception):
    """A body that is not the JSON object a route takes (answered 400)."""


def core_of(request: web.Request) -> Core:
    """The core, from the application or any sub-application below it."""
    return request.config_dict[CORE]


def by_key(action: Callable[[Services, str], Awaitable[Any]], key: str) -> Handler:
    """A route answering `action(services, <the path's {key}>)` as JSON: the many read, use
    and cancel routes whose one input is the thing's code in the path."""

    async def answer(request: web.Request) -> web.StreamResponse:
        return json_answer(await action(core_of(request).services, request.match_info[key]))

    return answer


def json_answer(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=dumps)


def error(status: int, message: str, **extra: Any) -> web.Response:
    """The one shape of every refusal: {"error": ..., "field"?: ..., more?}."""
    return json_answer({"error": message, **extra}, status)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body's JSON object; Malformed for bad JSON or anything but an object."""
    body = await read_body(request)
    try:
        data = json.loads(body)
    # ValueError covers bad UTF-8, bad JSON and integers past Python's digit limit;
    # RecursionError a body of thousands of nested brackets.
    except (ValueError, RecursionError) as exc:
        raise Malformed("malformed JSON") from exc
    if not isinstance(data, dict):
        raise Malformed("expected a JSON object")
    return data
