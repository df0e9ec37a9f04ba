"""``quill dev``'s one-port server: the gateway, the broker and every function, locally.

- ``/_broker/<namespace>/<name>``: the broker ingress (``K_SINK``), routing events by
  the Triggers in ``eventing/base``;
- ``/_functions/<name>/…``: each function target, where the broker delivers events;
- everything else: the ``bundle`` target, routed by ``knative/routing.yaml``.

It also runs, on its lifespan, the broker's dispatcher and the outbox relay that a
PingSource drives in the cluster. The events its own functions emit reach the broker in
process, and the broker delivers to its own functions in process: the same requests
and answers as over HTTP, without a TCP round trip through itself for each.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from quill import events
from quill.consumer import parse_event
from quill.domain import outbox
from quill.edge import Lifespan
from quill.errors import NotFoundError, QuillError
from quill.events import Envelope, SendFailed
from quill.http import error_body, error_response, json, status_of
from quill.observability import get_logger
from quill.routing import load_function
from quill.serving import closing_pools, create_app
from quill_tools.broker import config as broker_config
from quill_tools.broker.local import LocalBroker

__all__ = ["RELAY_SECONDS", "DevServer"]

RELAY_SECONDS = 5.0

_log = get_logger("quill.dev")


class DevServer:
    def __init__(self, base_url: str, *, relay_seconds: float = RELAY_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        self.broker = LocalBroker(broker_config.load(), self.function_url, self._serving)
        self.bundle: ASGIApp = create_app("bundle")
        self.relay_seconds = relay_seconds
        self._stop = asyncio.Event()
        self._app = Lifespan(self._route, self._running)
        self._functions: dict[str, ASGIApp] = {}  # each target behind its own edge, built on first delivery

    def function_url(self, name: str) -> str:
        return f"{self.base_url}/_functions/{name}/"

    def _serving(self, url: str) -> ASGIApp | None:
        """This server's app, for a URL of one of its functions."""
        return self._route if url.startswith(f"{self.base_url}/_functions/") else None

    @property
    def sink(self) -> str:
        return self.base_url + self.broker.path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path == self.broker.path:
            response = await self._ingress(Request(scope, receive))
            await response(scope, receive, send)
        elif scope["type"] == "http" and path.startswith("/_functions/"):
            name = path.split("/")[2]
            try:
                load_function(name)
            except LookupError:
                await error_response(NotFoundError({"function": ["not found"]}))(scope, receive, send)
                return
            if name not in self._functions:
                self._functions[name] = create_app(name)
            await self._functions[name](scope, receive, send)
        else:
            await self.bundle(scope, receive, send)

    async def _ingress(self, request: Request) -> Response:
        if request.method != "POST":
            return json(error_body({"method": ["only POST"]}), 405, {"Allow": "POST"})
        try:
            await self.broker.ingest(await parse_event(request))
        except QuillError as error:  # not an event (400), too large (413), PostgreSQL away (503: retry)
            return error_response(error)
        return Response(status_code=202)

    async def _take(self, envelope: Envelope) -> None:
        """One of this process's own events, ingested as the HTTP ingress would take it."""
        try:
            await self.broker.ingest(envelope.to_cloudevent())
        except QuillError as error:  # PostgreSQL away (503): the outbox keeps the event
            raise SendFailed(type(error).__name__, status_of(error)) from error

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

    @contextlib.asynccontextmanager
    async def _running(self, app: object) -> AsyncIterator[None]:
        """The broker's dispatcher and the outbox relay, for as long as the server runs."""
        # Served in process until the pools close: the sends a shutdown drains still land.
        events.serve_in_process(self.sink, self._take)
        try:
            async with closing_pools(app):
                tasks = [asyncio.create_task(self.broker.run(self._stop)), asyncio.create_task(self._relay_forever())]
                yield
                self._stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            events.serve_in_process(self.sink, None)
