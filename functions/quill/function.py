"""What turns a table of endpoints into one functions-framework http target.

A ``Function`` is called with the Starlette request functions-framework hands it and
always returns a response: it matches the route, verifies the caller, applies the
write limit, and maps a ``QuillError`` to its response (``quill.http``), anything else
to a logged JSON 500. It also serves the operational endpoints every function has:
``/health/liveness``, ``/health/readiness``, ``/metrics`` and ``/version``. CORS, the
request's id, log line and metrics are the edge's (``quill.edge``), around it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path

from quill import cache, db, ratelimit
from quill.auth.guard import AuthMode, authenticate
from quill.edge import header
from quill.errors import MethodNotAllowedError, NotFoundError, QuillError, token_missing
from quill.http import error_body, error_response, json
from quill.observability import bind_log_context, get_logger, metrics_text
from quill.settings import get_settings

if TYPE_CHECKING:
    from quill.auth.tokens import Claims

__all__ = ["Call", "Endpoint", "Function", "Handler"]

_log = get_logger("quill.http")
_RESOURCE_OF_PARAM = {"slug": "article", "username": "profile", "id": "comment"}


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it: the request and the verified caller, if any."""

    request: Request
    claims: Claims | None

    def param(self, name: str) -> str:
        """A path value; one PostgreSQL could never store (a NUL) names nothing: 404."""
        value = str(self.request.path_params[name])
        if "\x00" in value:
            raise NotFoundError({_RESOURCE_OF_PARAM.get(name, "route"): ["not found"]})
        return value

    @property
    def viewer_id(self) -> int | None:
        return self.claims.user_id if self.claims else None

    @property
    def session_id(self) -> str:
        return self._signed_in().session_id

    @property
    def user_id(self) -> int:
        return self._signed_in().user_id

    @property
    def token(self) -> str:
        """The verified access token the caller sent."""
        return self._signed_in().token

    def _signed_in(self) -> Claims:
        if self.claims is None:  # only reachable if a route is declared with the wrong auth mode
            raise token_missing()
        return self.claims


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    """One route of a function: method, path template, handler, and what the caller must show."""

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
            raise MethodNotAllowedError(method, (*allowed, "OPTIONS"))
        raise NotFoundError({"route": ["not found"]})

    async def __call__(self, request: Request) -> Response:
        # The decoded path as the server parsed it; request.url would rebuild
        # and re-split the whole URL first (~7 us of a ~55 us cached read).
        try:
            endpoint, params = self.match(request.method, request.scope["path"])
        except QuillError as error:  # no route: the edge counts it as unmatched
            bind_log_context(function=self.name)
            return error_response(error)
        # The function answering, which in the bundle is not the target the edge knows.
        bind_log_context(function=self.name, route=endpoint.path)
        request.scope["path_params"] = params
        try:
            return await self._dispatch(endpoint, request)
        except QuillError as error:
            return error_response(error)
        except Exception:
            _log.exception("request_failed")
            return json(error_body({"server": ["internal error"]}), 500)

    async def _dispatch(self, endpoint: Endpoint, request: Request) -> Response:
        claims = await authenticate(header(request.scope, b"authorization"), endpoint.auth)
        if claims is not None:
            bind_log_context(user_id=claims.user_id)
            if endpoint.write:
                await ratelimit.hit("writes", str(claims.user_id), get_settings().writes_per_user)
        return await endpoint.handler(Call(request, claims))


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
