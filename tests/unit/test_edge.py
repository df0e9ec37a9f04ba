"""The edge's lifespan: Starlette's protocol around a context, requests passed straight through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.types import Message

from quill.edge import Lifespan


async def test_the_lifespan_context_runs_from_startup_to_shutdown_and_requests_pass_through() -> None:
    steps: list[str] = []

    @asynccontextmanager
    async def running(app: object) -> AsyncIterator[None]:
        steps.append("started")
        yield
        steps.append("stopped")

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        steps.append(f"request {scope['path']}")

    app = Lifespan(inner, running)
    incoming: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "http", "path": "/api/tags"}, receive, send)
    await app({"type": "lifespan"}, receive, send)

    assert steps == ["request /api/tags", "started", "stopped"]
    assert [message["type"] for message in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
