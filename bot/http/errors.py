"""One place that turns every failure of a request into a JSON answer (and counts it).

Operator refusals (`bot.admin.errors`) carry no HTTP status: they get theirs here.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.admin.errors import AdminError, Conflict, Invalid, NotFound
from bot.http.common import Handler, Malformed, core_of, error

log = logging.getLogger("memberbot.http")

STATUS_OF = ((Invalid, 422), (NotFound, 404), (Conflict, 409))
CLIENT_CLOSED = "client_closed"  # the metrics' status label of requests whose client left


def refusal(exc: AdminError) -> web.Response:
    status = next((code for kind, code in STATUS_OF if isinstance(exc, kind)), 409)
    return error(status, exc.message, **exc.extra)


def _as_json(exc: web.HTTPException, limit: int) -> web.Response:
    """aiohttp's own refusals (unknown route, method, body too large) in our JSON shape."""
    if exc.status == 413:
        answer = error(413, f"body too large (at most {limit} bytes)")
    else:
        answer = error(exc.status, (exc.reason or "error").lower())
    if "Allow" in exc.headers:
        answer.headers["Allow"] = exc.headers["Allow"]
    return answer


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request; refusals become JSON; an unexpected failure is logged and
    answered 500 without a trace."""
    metrics = core_of(request).services.metrics
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    try:
        response = await handler(request)
    except AdminError as exc:
        response = refusal(exc)
    except Malformed as exc:
        response = error(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            metrics.http_requests.labels(name, str(exc.status)).inc()
            raise
        response = _as_json(exc, request.client_max_size)
    except ConnectionResetError:
        if not _client_gone(request):
            log.exception("request failed route=%s", name)
            metrics.http_requests.labels(name, "500").inc()
            return error(500, "internal error")
        # The client went away mid-body: nobody to answer, and not the server's failure.
        log.info("client closed the connection route=%s", name)
        metrics.http_requests.labels(name, CLIENT_CLOSED).inc()
        return web.Response(status=499)  # never sent: nginx's code for it, in access logs
    except Exception:
        log.exception("request failed route=%s", name)
        response = error(500, "internal error")
    metrics.http_requests.labels(name, str(response.status)).inc()
    return response


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()
