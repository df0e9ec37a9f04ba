"""Redis killed and restarted under load: no client sees an error. The broker down under
write load: every event is delivered once it is back, none twice."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from quill import cache
from quill.domain import outbox
from quill.settings import RateLimit, Settings, use_settings
from tests.conftest import Api, free_port
from tests.event.conftest import Receiver
from tests.faults.conftest import Load
from tests.integration.test_redis_outage import ThrowawayRedis

BROKER_DOWN_SECONDS = float(os.environ.get("QUILL_BROKER_DOWN_SECONDS", "4"))


async def test_redis_killed_and_restarted_under_load_no_client_error(
    api: Api, settings: Settings, settings_factory: Any, tmp_path: Any
) -> None:
    redis_server = ThrowawayRedis(tmp_path)
    redis_server.start()
    await cache.aclose()
    chosen = settings_factory(redis_url=redis_server.url, redis_timeout=0.2, writes_per_user=RateLimit(100000, 60))
    try:
        with use_settings(chosen):
            token = await api.register("reader")
            slug = (await api.create_article(token, "Hot article"))["slug"]

            async def request(worker: int, sequence: int) -> tuple[str, int]:
                if worker == 0:
                    response = await api.post(f"/api/articles/{slug}/comments", token, json={"comment": {"body": "x"}})
                    return "write", response.status_code
                path = [f"/api/articles/{slug}", "/api/profiles/reader", "/api/articles"][worker % 3]
                return "read", (await api.get(path, token if worker % 2 else None)).status_code

            load = Load()
            runner = asyncio.create_task(load.run(6, request))
            await asyncio.sleep(0.7)
            redis_server.stop()
            await asyncio.sleep(1.5)
            redis_server.start()
            await asyncio.sleep(1.5)
            load.stop.set()
            await runner
            await cache.aclose()
    finally:
        redis_server.stop()

    assert len(load.outcomes) > 100
    assert {outcome.status for outcome in load.outcomes} <= {200, 201}
    print(f"requests {len(load.outcomes)} with Redis killed for 1.5 s and restarted: no error")


@pytest.fixture
async def late_receiver() -> AsyncIterator[tuple[str, Any]]:
    """A sink URL that answers nothing until ``start()`` is awaited."""
    port = free_port()
    state = Receiver(port)
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start() -> Receiver:
        app = Starlette(routes=[Route("/{path:path}", state.endpoint, methods=["POST"])])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        servers.append((server, asyncio.create_task(server.serve())))
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
            await asyncio.sleep(0.01)
        return state

    yield state.url("/sink"), start
    for server, task in servers:
        server.should_exit = True
        await task


async def test_broker_down_under_write_load_then_every_event_delivered_once(
    api: Api, settings_factory: Any, late_receiver: tuple[str, Any]
) -> None:
    sink, start_sink = late_receiver
    with use_settings(
        settings_factory(k_sink=sink, event_timeout=0.5, writes_per_user=RateLimit(100000, 60))
    ) as chosen:
        token = await api.register("writer")

        async def request(worker: int, sequence: int) -> tuple[str, int]:
            response = await api.post(
                "/api/articles",
                token,
                json={"article": {"title": f"w{worker}-{sequence}", "description": "d", "body": "b"}},
            )
            return "write", response.status_code

        load = Load()
        runner = asyncio.create_task(load.run(4, request))
        await asyncio.sleep(BROKER_DOWN_SECONDS)
        load.stop.set()
        await runner
        receiver: Receiver = await start_sink()
        sent = await outbox.relay(max_batches=1000)
        with psycopg.connect(chosen.database_url) as conn:
            row = conn.execute("SELECT count(*), count(*) FILTER (WHERE published_at IS NULL) FROM outbox").fetchone()

    assert {outcome.status for outcome in load.outcomes} == {201}
    assert row is not None
    total, pending = row
    assert pending == 0
    assert sent == total
    received = await receiver.wait_for(total)
    assert len({item.event["id"] for item in received}) == total == len(received)
    print(f"writes {len(load.outcomes)}, broker down {BROKER_DOWN_SECONDS}s; events {total}, all delivered once")
