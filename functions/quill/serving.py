"""Running a function target under uvicorn, the way its Knative Service runs it.

functions-framework's app has no lifespan hook, so this wrapper closes the pools on
shutdown, and answers in the API's JSON error format what its router would answer in
plain text (a path it cannot match, a method it does not route, ``/robots.txt``);
everything else is functions-framework's own ``create_asgi_app``. ``http_protocol``
does the same for the requests uvicorn itself cannot parse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from quill import cache, db, events
from quill.errors import ApiError
from quill.http import NOSNIFF, JSONResponse
from quill.routing import FUNCTIONS_DIR, load_module, load_rules, resolve

if TYPE_CHECKING:
    from quill.function import Function

__all__ = ["MAX_HEADERS", "MAX_HEADER_BYTES", "aclose_all", "create_app", "http_protocol", "source_of"]

# What functions-framework's router routes to the function; anything else it answers
# itself, in text/plain: another method (405, with an Allow header that is not ours),
# and GET on the two paths it keeps for itself.
_ROUTED_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"})
_FRAMEWORK_PATHS = frozenset({"/robots.txt", "/favicon.ico"})


async def aclose_all() -> None:
    from quill.domain import outbox  # the domain is imported by the function, not by the server

    await outbox.drain()  # the events writes are still sending, before their pool closes
    await db.aclose()
    await cache.aclose()
    await events.aclose()


def source_of(function: str) -> str:
    source = FUNCTIONS_DIR / function / "main.py"
    if not source.is_file():
        known = sorted(path.parent.name for path in FUNCTIONS_DIR.glob("*/main.py"))
        raise SystemExit(f"no function {function!r}; known functions: {', '.join(known)}")
    return str(source)


MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 128


def _too_many_headers(scope: Scope) -> bool:
    headers = scope["headers"]
    return len(headers) > MAX_HEADERS or sum([len(name) + len(value) for name, value in headers]) > MAX_HEADER_BYTES


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


class _Edge:
    """Around functions-framework's app: closes the pools on shutdown, refuses header
    floods (431) before any work is done, and gives the JSON error a client expects
    where functions-framework's router would answer in text/plain."""

    def __init__(self, app: ASGIApp, target: str) -> None:
        self.app = app
        self.target = target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if _too_many_headers(scope):
                limits = f"at most {MAX_HEADERS} headers, {MAX_HEADER_BYTES} bytes"
                await _error({"headers": [f"are too large ({limits})"]}, 431)(scope, receive, send)
                return
            if "\n" in scope["path"] or "\r" in scope["path"]:
                await _error({"route": ["not found"]}, 404)(scope, receive, send)
                return
            if scope["method"] not in _ROUTED_METHODS or (
                scope["path"] in _FRAMEWORK_PATHS and scope["method"] in ("GET", "HEAD")
            ):
                await self._unrouted(scope)(scope, receive, send)
                return
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.app(scope, receive, send)

    def _unrouted(self, scope: Scope) -> JSONResponse:
        """A 404, or a 405 whose ``Allow`` lists the methods the path really serves."""
        try:
            _function_serving(self.target, scope["path"]).match(scope["method"], scope["path"])
        except ApiError as exc:
            return _error(exc.errors, exc.status_code, exc.headers)
        return _error({"route": ["not found"]}, 404)  # a served path the framework keeps for itself

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await aclose_all()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _error(errors: dict[str, list[str]], status_code: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": errors}, status_code, {**(headers or {}), "X-Content-Type-Options": "nosniff"})


def create_app(function: str) -> ASGIApp:
    from functions_framework.aio import create_asgi_app

    app: ASGIApp = create_asgi_app(target=function, source=source_of(function))  # type: ignore[no-untyped-call]  # untyped library
    return _Edge(app, function)


def http_protocol() -> type[Any]:
    """uvicorn's httptools protocol, answering a request it cannot parse (a request line
    over its limit, bytes that are not HTTP) with the API's JSON error, not text/plain."""
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

    class JSONErrorsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            body = orjson.dumps({"errors": {"request": [f"is malformed ({msg.rstrip('.')})"]}})
            defaults = self.server_state.default_headers
            head = [STATUS_LINE[400], *(name + b": " + value + b"\r\n" for name, value in defaults)]
            head += [
                b"content-type: application/json; charset=utf-8\r\n",
                b"x-content-type-options: " + NOSNIFF + b"\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
            ]
            self.transport.write(b"".join(head) + body)
            self.transport.close()

    return JSONErrorsProtocol
