"""What turns a table of endpoints into one functions-framework http target.

A ``Function`` is called with the Starlette request functions-framework hands it and
always returns a response: it matches the route, answers CORS preflights, verifies the
caller, applies the write limit, maps ``ApiError`` to its RealWorld body, and writes
one ``request_finished`` log line and the request metrics. It also serves the
operational endpoints every function has: ``/health/liveness``, ``/health/readiness``,
``/metrics`` and ``/version``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Scope

from quill import cache, db, ratelimit
from quill.auth.guard import AuthMode, authenticate
from quill.errors import ApiError, MethodNotAllowed, NotFound, token_missing
from quill.http import NOSNIFF, json
from quill.observability import (
    bind_log_context,
    configure_logging,
    get_logger,
    logs_at,
    metrics_text,
    observe_request,
    set_traceparent,
    start_log_context,
)
from quill.settings import get_settings

if TYPE_CHECKING:
    from quill.auth.tokens import Claims

__all__ = ["Call", "Endpoint", "Function", "Handler"]

_log = get_logger("quill.http")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CORS_HEADERS = "Authorization, Content-Type, X-Requested-With, X-Request-Id, traceparent"
_EXPOSED_HEADERS = "Retry-After, X-Request-Id, X-Refresh-Token"
_RESOURCE_OF_PARAM = {"slug": "article", "username": "profile", "id": "comment"}
# Probes and scrapes log their line at debug: at info they would drown the requests.
_QUIET_ROUTES = ("/health", "/metrics")


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it: the request and the verified caller, if any."""

    request: Request
    claims: Claims | None

    def param(self, name: str) -> str:
        """A path value; one PostgreSQL could never store (a NUL) names nothing: 404."""
        value = str(self.request.path_params[name])
        if "\x00" in value:
            raise NotFound({_RESOURCE_OF_PARAM.get(name, "route"): ["not found"]})
        return value

    @property
    def viewer_id(self) -> int | None:
        return self.claims.user_id if self.claims else None

    @property
    def session_id(self) -> str:
        if self.claims is None:  # only reachable if a route is declared with the wrong auth mode
            raise token_missing()
        return self.claims.session_id

    @property
    def user_id(self) -> int:
        if self.claims is None:  # only reachable if a route is declared with the wrong auth mode
            raise token_missing()
        return self.claims.user_id


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    auth: AuthMode = "optional"
    write: bool = False
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex, _, _ = compile_path(self.path)
        object.__setattr__(self, "pattern", regex)


class Function:
    def __init__(self, name: str, endpoints: Sequence[Endpoint]) -> None:
        self.name = name
        self.endpoints = [*endpoints, *self._operations()]

    def _operations(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/health/liveness", _liveness, auth="none"),
            Endpoint("GET", "/health/readiness", _readiness, auth="none"),
            Endpoint("GET", "/metrics", _metrics, auth="none"),
            Endpoint("GET", "/version", self._version, auth="none"),
        ]

    async def _version(self, call: Call) -> Response:
        return json({"function": self.name, "version": get_settings().version})

    def match(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
        """The endpoint for ``method`` on ``path``. A trailing slash names the same path
        (``POST /api/articles/`` creates an article): RealWorld frontends send it, and a
        redirect would break CORS preflights and make some clients drop the body."""
        if len(path) > 1 and path[-1] == "/":
            path = path[:-1]
        allowed: list[str] = []
        for endpoint in self.endpoints:
            found = endpoint.pattern.match(path)
            if found is None:
                continue
            if endpoint.method == method or (method == "HEAD" and endpoint.method == "GET"):
                return endpoint, found.groupdict()
            allowed.append(endpoint.method)
        if allowed:
            raise MethodNotAllowed(
                {"method": [f"{method} is not allowed here"]}, {"Allow": ", ".join([*allowed, "OPTIONS"])}
            )
        raise NotFound({"route": ["not found"]})

    async def __call__(self, request: Request) -> Response:
        configure_logging()
        started = time.perf_counter()
        edge = _edge_headers(request.scope)
        request_id = _request_id(edge.get(b"x-request-id", b""))
        traceparent = _traceparent(edge.get(b"traceparent", b""))
        origin = _allowed_origin(edge.get(b"origin"))
        set_traceparent(traceparent)  # carried into the events this request emits
        start_log_context(
            function=self.name,
            request_id=request_id,
            trace_id=traceparent.split("-")[1] if traceparent else None,
            method=request.method,
        )
        route = "unmatched"
        try:
            if request.method == "OPTIONS":
                response = _preflight(origin)
            else:
                # The decoded path as the server parsed it; request.url would rebuild
                # and re-split the whole URL first (~7 us of a ~55 us cached read).
                endpoint, params = self.match(request.method, request.scope["path"])
                route = endpoint.path
                bind_log_context(route=route)
                request.scope["path_params"] = params
                response = await self._dispatch(endpoint, request, edge.get(b"authorization"))
        except ApiError as exc:
            response = json(exc.body(), exc.status_code, exc.headers)
        except Exception:
            _log.exception("request_failed")
            response = json({"errors": {"server": ["internal error"]}}, 500)
        _cors(origin, response)
        response.raw_headers += ((b"x-request-id", request_id.encode("latin-1")), (b"x-content-type-options", NOSNIFF))
        elapsed = time.perf_counter() - started
        observe_request(self.name, route, request.method, response.status_code, elapsed)
        level = logging.DEBUG if route.startswith(_QUIET_ROUTES) else logging.INFO
        if logs_at(level):  # a filtered line costs nothing, not even its fields
            _log.log(level, "request_finished", status=response.status_code, duration_ms=round(elapsed * 1000, 2))
        return response

    async def _dispatch(self, endpoint: Endpoint, request: Request, authorization: bytes | None) -> Response:
        claims = await authenticate(authorization, endpoint.auth)
        if claims is not None:
            bind_log_context(user_id=claims.user_id)
            if endpoint.write:
                await ratelimit.hit("writes", str(claims.user_id), get_settings().writes_per_user)
        return await endpoint.handler(Call(request, claims))


_EDGE_HEADERS = frozenset({b"authorization", b"x-request-id", b"traceparent", b"origin"})


def _edge_headers(scope: Scope) -> dict[bytes, bytes]:
    """The headers this module reads, in one pass (the server gives names in lower case)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _EDGE_HEADERS:
            found.setdefault(name, value)
    return found


def _request_id(given: bytes) -> str:
    """The caller's id if it is sane, else a new one. An id correlates log lines and is
    no secret: ``random`` makes one without the system call ``secrets`` costs."""
    text = given.decode("latin-1")
    return text if given and _REQUEST_ID.match(text) else f"{random.getrandbits(64):016x}"


def _traceparent(given: bytes) -> str | None:
    """The W3C ``traceparent`` header if it is well formed."""
    if not given:  # most requests carry none
        return None
    header = given.decode("latin-1").strip()
    return header if _TRACEPARENT.match(header) else None


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
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def _cors(origin: str | None, response: Response) -> None:
    if origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = _EXPOSED_HEADERS
    if origin != "*":
        response.headers["Vary"] = "Origin"


async def _liveness(call: Call) -> Response:
    return json({"status": "ok"})


async def _readiness(call: Call) -> Response:
    database, redis = await asyncio.gather(db.ping(), cache.ping())
    checks: dict[str, Any] = {"database": database, "redis": "ok" if redis else "down"}
    ready = database != "down" and (redis or not get_settings().readiness_requires_redis)
    return json({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)


async def _metrics(call: Call) -> Response:
    body, content_type = metrics_text()
    return Response(body, media_type=content_type)
