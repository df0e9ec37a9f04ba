"""Running a function target under uvicorn, the way its Knative Service runs it.

``create_app`` is functions-framework's own ``create_asgi_app`` behind the edge
(``quill.edge``), composed here, in one place; its lifespan closes the pools on
shutdown (functions-framework's app has no lifespan hook). ``http_protocol`` answers
in the API's JSON error format the requests uvicorn itself cannot parse.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.middleware import Middleware
from starlette.types import ASGIApp

from quill import cache, db, events
from quill.edge import Cors, Lifespan, Limits, RequestContext
from quill.http import NOSNIFF, error_body
from quill.observability import configure_logging
from quill.routing import FUNCTIONS_DIR

__all__ = ["aclose_all", "closing_pools", "create_app", "http_protocol", "source_of"]


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


@asynccontextmanager
async def closing_pools(app: object) -> AsyncIterator[None]:
    """The lifespan of a served target: nothing to open (clients open on first use), the
    pools to close at shutdown."""
    yield
    await aclose_all()


def create_app(function: str) -> ASGIApp:
    from functions_framework.aio import create_asgi_app

    configure_logging()
    app: ASGIApp = create_asgi_app(target=function, source=source_of(function))  # type: ignore[no-untyped-call]  # untyped library
    # The edge, outermost first: what is refused before any work, then the request's
    # context (its id, log line and metrics, so they cover the CORS answers too), then CORS.
    edge = [Middleware(Limits, target=function), Middleware(RequestContext, target=function), Middleware(Cors)]
    for cls, args, kwargs in reversed(edge):
        # Each layer holds the next one's bound ``__call__``: calling an instance goes
        # through its type's slot and a fresh argument tuple; a bound method does not.
        app = cls(app, *args, **kwargs).__call__
    return Lifespan(app, closing_pools)


def http_protocol() -> type[Any]:
    """uvicorn's httptools protocol, answering a request it cannot parse (a request line
    over its limit, bytes that are not HTTP) with the API's JSON error, not text/plain."""
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

    class JSONErrorsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            body = orjson.dumps(error_body({"request": [f"is malformed ({msg.rstrip('.')})"]}))
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
