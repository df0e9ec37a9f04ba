"""A real HTTP endpoint for events: uvicorn on a free loopback port, recording what it gets;
and the events the writes really emitted, to deliver to the consumers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import uvicorn
from cloudevents.http import CloudEvent, from_http
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from quill.settings import get_settings
from tests.conftest import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    event: CloudEvent
    at: float


@dataclass
class Receiver:
    """Answers each path with the next planned status (then 202), recording every event."""

    port: int
    received: list[Received] = field(default_factory=list)
    plans: dict[str, list[int]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    replies: dict[str, CloudEvent] = field(default_factory=dict)
    failing_ids: set[str] = field(default_factory=set)  # these events always get a 500 (a crashing consumer)
    app: Starlette | None = None  # what serves it, for a broker that calls it in process

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        return [item for item in self.received if item.path == path]

    async def wait_for(self, count: int, path: str | None = None, within: float = 10.0) -> list[Received]:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            got = self.received if path is None else self.on(path)
            if len(got) >= count:
                return got
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"only {len(got)} of {count} events arrived at {path or 'any path'}")
            await asyncio.sleep(0.02)

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        event = from_http(dict(request.headers), body)
        self.received.append(
            Received(request.url.path, dict(request.headers), event, asyncio.get_running_loop().time())
        )
        if request.url.path in self.delays:
            await asyncio.sleep(self.delays[request.url.path])
        plan = self.plans.get(request.url.path)
        status = plan.pop(0) if plan else 202
        if event["id"] in self.failing_ids and request.url.path != "/dls":
            status = 500
        reply = self.replies.pop(request.url.path, None)
        if reply is not None and status < 300:
            from cloudevents.conversion import to_binary

            headers, content = to_binary(reply)
            return Response(content, status_code=200, headers=headers)
        return Response(status_code=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    state = Receiver(port)
    app = Starlette(routes=[Route("/{path:path}", state.endpoint, methods=["POST"])])
    state.app = app
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
        await asyncio.sleep(0.01)
    yield state
    server.should_exit = True
    await task


def article_id_of(slug: str) -> int:
    """The article id an event about it would carry."""
    with psycopg.connect(get_settings().database_url) as conn:
        row = conn.execute("SELECT id FROM articles WHERE slug = %s", (slug,)).fetchone()
    assert row is not None
    return int(row[0])


def emitted(event_type: str, subject: int) -> Any:
    """The data of the last event of this type the writes put in the outbox for ``subject``."""
    with psycopg.connect(get_settings().database_url) as conn:
        row = conn.execute(
            "SELECT data FROM outbox WHERE type = %s AND subject = %s ORDER BY id DESC LIMIT 1",
            (event_type, str(subject)),
        ).fetchone()
    assert row is not None
    return row[0]
