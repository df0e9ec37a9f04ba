"""``quill dev``'s one-port server: the gateway, the broker and every function, locally.

- ``/_broker/<namespace>/<name>``: the broker ingress (``K_SINK``), routing events by
  the Triggers in ``eventing/base``;
- ``/_functions/<name>/…``: each function target, where the broker delivers events;
- everything else: the ``bundle`` target, routed by ``knative/routing.yaml``.

It also runs, on its lifespan, the broker's dispatcher and the outbox relay that a
PingSource drives in the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from quill.consumer import parse_event
from quill.domain import outbox
from quill.errors import ApiError
from quill.http import JSONResponse
from quill.observability import get_logger
from quill.routing import load_function
from quill.serving import aclose_all, create_app
from quill_tools.broker import config as broker_config
from quill_tools.broker.local import LocalBroker

__all__ = ["RELAY_SECONDS", "DevServer"]

RELAY_SECONDS = 5.0

_log = get_logger("quill.dev")


class DevServer:
    def __init__(self, base_url: str, *, relay_seconds: float = RELAY_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        self.broker = LocalBroker(broker_config.load(), self.function_url)
        self.bundle: ASGIApp = create_app("bundle")
        self.relay_seconds = relay_seconds
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    def function_url(self, name: str) -> str:
        return f"{self.base_url}/_functions/{name}/"

    @property
    def sink(self) -> str:
        return self.base_url + self.broker.path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path == self.broker.path:
            response = await self._ingress(Request(scope, receive))
            await response(scope, receive, send)
        elif scope["type"] == "http" and path.startswith("/_functions/"):
            name = path.split("/")[2]
            try:
                target = load_function(name)
            except LookupError:
                response = JSONResponse({"errors": {"function": ["not found"]}}, 404)
            else:
                response = await target(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await self.bundle(scope, receive, send)

    async def _ingress(self, request: Request) -> Response:
        if request.method != "POST":
            return JSONResponse({"errors": {"method": ["only POST"]}}, 405, headers={"Allow": "POST"})
        try:
            await self.broker.ingest(await parse_event(request))
        except ApiError as exc:  # not an event (400), too large (413), PostgreSQL away (503: retry)
            return JSONResponse(exc.body(), exc.status_code, headers=exc.headers)
        return Response(status_code=202)

    async def _relay_forever(self) -> None:
        while not self._stop.is_set():
            try:
                sent = await outbox.relay()
                if sent:
                    _log.info("outbox_relayed", sent=sent)
            except Exception:
                _log.exception("outbox_relay_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.relay_seconds)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._tasks = [
                    asyncio.create_task(self.broker.run(self._stop)),
                    asyncio.create_task(self._relay_forever()),
                ]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._stop.set()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                await aclose_all()
                await send({"type": "lifespan.shutdown.complete"})
                return
