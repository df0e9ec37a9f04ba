"""Running a function target under uvicorn, the way its Knative Service runs it.

functions-framework's app has no lifespan hook, so this wrapper closes the pools on
shutdown (and answers the few paths its router cannot match); everything else is
functions-framework's own ``create_asgi_app``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from quill import cache, db, events
from quill.http import JSONResponse
from quill.routing import FUNCTIONS_DIR

__all__ = ["MAX_HEADERS", "MAX_HEADER_BYTES", "aclose_all", "create_app", "source_of"]


async def aclose_all() -> None:
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


class _Edge:
    """Around functions-framework's app: closes the pools on shutdown, refuses header
    floods (431) before any work is done, and answers paths its router cannot match
    (a decoded line break) with the JSON 404 a client expects."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if _too_many_headers(scope):
                limits = f"at most {MAX_HEADERS} headers, {MAX_HEADER_BYTES} bytes"
                await JSONResponse({"errors": {"headers": [f"are too large ({limits})"]}}, 431)(scope, receive, send)
                return
            if "\n" in scope["path"] or "\r" in scope["path"]:
                await JSONResponse({"errors": {"route": ["not found"]}}, 404)(scope, receive, send)
                return
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await aclose_all()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(function: str) -> ASGIApp:
    from functions_framework.aio import create_asgi_app

    app: ASGIApp = create_asgi_app(target=function, source=source_of(function))  # type: ignore[no-untyped-call]  # untyped library
    return _Edge(app)
