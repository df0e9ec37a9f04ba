"""The HTTP edge every function target is served behind, as ASGI middleware.

``quill.serving.create_app`` composes them, outermost first:

- ``Limits``: refuses a header flood (431) or a path with CR/LF (404) before any work,
  and answers in JSON what functions-framework's router would answer in text/plain;
- ``RequestContext``: the request id and trace, the log context, one
  ``request_finished`` line, the request metrics, ``X-Request-Id`` and ``nosniff``; the
  request id is also functions-framework's execution id;
- ``Cors``: preflights and the CORS headers, by ``CORS_ALLOW_ORIGINS``;

then functions-framework's app, whose ``Function`` routes, authenticates and maps
errors. ``Lifespan`` runs a lifespan context (closing the pools) through Starlette's.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quill.errors import NotFoundError, QuillError
from quill.http import NOSNIFF, error_body, error_response, json
from quill.observability import get_logger, logs_at, observe_request, set_traceparent, start_log_context
from quill.routing import load_module, load_rules, resolve
from quill.settings import get_settings

if TYPE_CHECKING:
    from quill.function import Function

__all__ = ["MAX_HEADERS", "MAX_HEADER_BYTES", "Cors", "Lifespan", "Limits", "RequestContext", "header"]

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 128

_log = get_logger("quill.http")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes and scrapes log their line at debug: at info they would drown the requests.
_QUIET_ROUTES = ("/health", "/metrics")
# The header functions-framework takes a request's execution id from (it makes one when
# the request has none).
_EXECUTION_ID = b"function-execution-id"
# What functions-framework's router routes to the function; anything else it answers
# itself, in text/plain: another method (405, with an Allow header that is not ours),
# and GET on the two paths it keeps for itself.
_ROUTED_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"})
_FRAMEWORK_PATHS = frozenset({"/robots.txt", "/favicon.ico"})


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case, as the server gives names)."""
    for key, value in scope["headers"]:
        if key == name:
            found: bytes = value
            return found
    return None


class Limits:
    """What is refused before any work is done, and the JSON error a client expects
    where functions-framework's router would answer in text/plain."""

    def __init__(self, app: ASGIApp, target: str) -> None:
        self.app = app
        self.target = target

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not ``async``: a request that passes is the inner app's own awaitable, so each
        # layer costs a call, not a coroutine of its own (uvicorn only sees ``Lifespan``).
        if scope["type"] == "http":
            if _too_many_headers(scope):
                limits = f"at most {MAX_HEADERS} headers, {MAX_HEADER_BYTES} bytes"
                return _error({"headers": [f"are too large ({limits})"]}, 431)(scope, receive, send)
            if "\n" in scope["path"] or "\r" in scope["path"]:
                return _error({"route": ["not found"]}, 404)(scope, receive, send)
            if scope["method"] not in _ROUTED_METHODS or (
                scope["path"] in _FRAMEWORK_PATHS and scope["method"] in ("GET", "HEAD")
            ):
                return self._unrouted(scope)(scope, receive, send)
        return self.app(scope, receive, send)

    def _unrouted(self, scope: Scope) -> Response:
        """A 404, or a 405 whose ``Allow`` lists the methods the path really serves."""
        try:
            _function_serving(self.target, scope["path"]).match(scope["method"], scope["path"])
        except QuillError as error:
            return error_response(error, {"X-Content-Type-Options": "nosniff"})
        # a served path the framework keeps for itself
        return error_response(NotFoundError({"route": ["not found"]}), {"X-Content-Type-Options": "nosniff"})


def _too_many_headers(scope: Scope) -> bool:
    headers = scope["headers"]
    return len(headers) > MAX_HEADERS or sum([len(name) + len(value) for name, value in headers]) > MAX_HEADER_BYTES


def _error(errors: dict[str, list[str]], status_code: int) -> Response:
    return json(error_body(errors), status_code, {"X-Content-Type-Options": "nosniff"})


def _function_serving(target: str, path: str) -> Function:
    """The ``Function`` that answers ``path`` in this target (the bundle routes by path)."""
    if target == "bundle":
        name = resolve(load_rules(), path)
        if name is None:
            own: Function = load_module("bundle").OWN
            return own
        target = name
    function: Function = load_module(target).FUNCTION
    return function


class RequestContext:
    """Per request: its id and trace, the log context every line carries, and at the end
    one ``request_finished`` line and the request metrics.

    The ``Function`` that answers binds ``function`` (the bundle's differs from the
    target) and ``route`` (the template) into the same context; an answer no route
    gave (a preflight, a 404) is counted under ``unmatched``."""

    def __init__(self, app: ASGIApp, target: str) -> None:
        self.app = app
        self.target = target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id, traceparent = _ids(scope)
        set_traceparent(traceparent)  # carried into the events this request emits
        context = start_log_context(
            function=self.target,
            request_id=request_id,
            trace_id=traceparent.split("-")[1] if traceparent else None,
            method=scope["method"],
        )
        raw_id = request_id.encode("latin-1")
        # First, so functions-framework takes it (its first match) over a client's own and
        # makes none: one id per request in both logs, and no 12 random draws (~2.6 us).
        scope["headers"] = [(_EXECUTION_ID, raw_id), *scope["headers"]]
        edge_headers = ((b"x-request-id", raw_id), (b"x-content-type-options", NOSNIFF))
        status = 500

        def send_with_id(message: Message) -> Awaitable[None]:  # not async: see ``Lifespan``
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *edge_headers]
            return send(message)

        await self.app(scope, receive, send_with_id)
        elapsed = time.perf_counter() - started
        route: str = context.get("route", "unmatched")
        observe_request(context["function"], route, scope["method"], status, elapsed)
        level = logging.DEBUG if route.startswith(_QUIET_ROUTES) else logging.INFO
        if logs_at(level):  # a filtered line costs nothing, not even its fields
            _log.log(level, "request_finished", status=status, duration_ms=round(elapsed * 1000, 2))


def _ids(scope: Scope) -> tuple[str, str | None]:
    """The request id and the W3C ``traceparent``, in one pass over the headers."""
    given_id = given_trace = b""
    for name, value in scope["headers"]:
        if name == b"x-request-id" and not given_id:
            given_id = value
        elif name == b"traceparent" and not given_trace:
            given_trace = value
    return _request_id(given_id), _traceparent(given_trace)


def _request_id(given: bytes) -> str:
    """The caller's id if it is sane, else a new one. An id correlates log lines and is
    no secret: ``random`` makes one without the system call ``secrets`` costs."""
    text = given.decode("latin-1")
    return text if given and _REQUEST_ID.match(text) else f"{random.getrandbits(64):016x}"


def _traceparent(given: bytes) -> str | None:
    if not given:  # most requests carry none
        return None
    header = given.decode("latin-1").strip()
    return header if _TRACEPARENT.match(header) else None


_ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
_ALLOW_HEADERS = "Authorization, Content-Type, X-Requested-With, X-Request-Id, traceparent"
_EXPOSE_HEADERS = "Retry-After, X-Request-Id, X-Refresh-Token"


class Cors:
    """CORS by ``CORS_ALLOW_ORIGINS``: every ``OPTIONS`` is answered here (204), and an
    allowed origin gets ``Access-Control-Allow-Origin`` (``Vary: Origin`` unless ``*``).

    Hand-written, not Starlette's ``CORSMiddleware``. That one, in this place with the
    same origins, methods and headers, cost 310,493 instructions per liveness request
    against 269,719 with this one (+15%; callgrind over ``quill.bench.apptime``, a
    request without ``Origin``, as every request from outside a browser): it looks the
    header up through ``Headers`` (a raised and caught ``KeyError`` when it is absent),
    wraps ``send`` and rewrites every response to add ``Vary: Origin``. It also answers
    differently: a preflight 200 ``OK`` (400 when the origin or a header is not
    allowed) instead of 204, and its origins are fixed when the app is built, where the
    settings may be installed after (``quill dev``, the tests)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        origin = _allowed_origin(header(scope, b"origin"))
        if scope["method"] == "OPTIONS":
            return _preflight(origin)(scope, receive, send)
        if origin is None:
            return self.app(scope, receive, send)
        return self._simple(origin, scope, receive, send)

    async def _simple(self, origin: str, scope: Scope, receive: Receive, send: Send) -> None:
        def send_with_cors(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                _allow(origin, MutableHeaders(scope=message))
            return send(message)

        await self.app(scope, receive, send_with_cors)


def _allowed_origin(given: bytes | None) -> str | None:
    """What ``Access-Control-Allow-Origin`` answers a request from ``given``, if anything."""
    if given is None:
        return None
    allowed = get_settings().cors_allow_origins
    if "*" in allowed:
        return "*"
    origin = given.decode("latin-1")
    return origin if origin in allowed else None


def _preflight(origin: str | None) -> Response:
    response = Response(status_code=204)
    if origin is not None:
        response.headers["Access-Control-Allow-Methods"] = _ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = _ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
        _allow(origin, response.headers)
    return response


def _allow(origin: str, headers: MutableHeaders) -> None:
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Expose-Headers"] = _EXPOSE_HEADERS
    if origin != "*":
        headers["Vary"] = "Origin"


class Lifespan:
    """``app``, with ASGI lifespan messages run through Starlette's ``Router.lifespan``
    on ``lifespan`` (an async context manager factory, given the app): only lifespan
    scopes reach the router, so a request pays for no routing it does not need.

    The outermost layer, so ``async``: uvicorn tells an ASGI 3 app by a coroutine
    ``__call__``. The layers inside are plain calls that return the next layer's
    awaitable: a request crosses each without a coroutine of its own."""

    def __init__(self, app: ASGIApp, lifespan: Callable[[Any], AbstractAsyncContextManager[None]]) -> None:
        self.app = app
        self.router = Router(lifespan=lifespan)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.router.lifespan(scope, receive, send)
            return
        await self.app(scope, receive, send)
