"""``quill dev``'s one-port server: the gateway, the broker's ingress and every function, locally.

- ``/_broker/<namespace>/<name>``: the broker ingress (``K_SINK``), routing events by
  the Triggers in ``eventing/base``;
- ``/_functions/<name>/…``: each function target, where the broker delivers events;
- everything else: the ``bundle`` target, routed by ``knative/routing.yaml``.

The events its own functions emit reach the broker's ingest in process. The broker's
dispatcher, the outbox relay that a PingSource drives in the cluster, and the event
functions it delivers to run in a second process (``devworker``), started and stopped
on this server's lifespan: delivering an event costs about what serving a request does,
and it would otherwise be taken from the requests' time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import psycopg
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from quill import events
from quill.consumer import parse_event
from quill.edge import Lifespan
from quill.errors import MalformedError, QuillError
from quill.http import error_body, error_response, json
from quill.serving import closing_pools, create_app
from quill.settings import get_settings
from quill_tools import devworker
from quill_tools.broker import config as broker_config
from quill_tools.broker.local import LocalBroker
from quill_tools.localfunctions import PREFIX, LocalFunctions

__all__ = ["DevServer"]


class DevServer:
    def __init__(self, base_url: str, *, relay_seconds: float = devworker.RELAY_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        self.functions = LocalFunctions(self.base_url)
        # Here only the broker's ingest: its dispatcher runs in the worker.
        self.broker = LocalBroker(broker_config.load(), self.functions.url_of)
        self.bundle: ASGIApp = create_app("bundle")
        self.relay_seconds = relay_seconds
        self.activity = devworker.ApiActivity()  # the worker's deliveries wait while the API serves
        self._app = Lifespan(self._route, self._running)

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
        elif scope["type"] == "http" and path.startswith(PREFIX):
            await self.functions(scope, receive, send)
        else:
            with self.activity.request():
                await self.bundle(scope, receive, send)

    async def _ingress(self, request: Request) -> Response:
        if request.method != "POST":
            return json(error_body({"method": ["only POST"]}), 405, {"Allow": "POST"})
        try:
            await self.broker.ingest(await parse_event(request))
        except QuillError as error:  # not an event (400), too large (413), PostgreSQL away (503: retry)
            return error_response(error)
        except psycopg.DataError:  # data PostgreSQL cannot store (a NUL character in JSON)
            return error_response(MalformedError({"event": ["has data that cannot be stored"]}))
        return Response(status_code=202)

    @contextlib.asynccontextmanager
    async def _running(self, app: object) -> AsyncIterator[None]:
        """The worker (the broker's dispatcher, the outbox relay, the event functions), for
        as long as the server runs."""
        # Served in process until the pools close: the sends a shutdown drains still land.
        events.serve_in_process(self.sink, self.broker.take)
        stopping = asyncio.Event()
        worker = asyncio.create_task(
            devworker.run(get_settings(), self.base_url, stopping, self.activity, relay_seconds=self.relay_seconds)
        )
        try:
            async with closing_pools(app):
                yield
        finally:
            stopping.set()
            await worker
            events.serve_in_process(self.sink, None)
