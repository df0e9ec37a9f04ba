"""Throwaway servers of the tests' own, to break on purpose: never the machine's."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from quill import cache, db
from quill.migrate import migrate
from quill.settings import Settings, use_settings
from tests.event.conftest import receiver  # noqa: F401 - the real HTTP sink fixture, shared


class ThrowawayPostgres:
    """A PostgreSQL (pgserver's binaries) in a temp folder, that a test may kill and restart."""

    def __init__(self, folder: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            self.server: Any = pgserver.get_server(str(folder), cleanup_mode="stop")  # type: ignore[attr-defined]
        self.url = str(self.server.get_uri())

    def kill(self) -> None:
        """Fast shutdown, as a crash or a failover looks to clients: every session is cut."""
        pid = self.server.get_pid()
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise AssertionError("PostgreSQL did not stop")

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def stop(self) -> None:
        self.server.cleanup()


@pytest.fixture
def throwaway_postgres(tmp_path: Path) -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres(tmp_path / "pgdata")
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE quill")
    server.url = str(psycopg.conninfo.make_conninfo(server.url, dbname="quill"))
    migrate(server.url)
    yield server
    server.stop()


@pytest.fixture
async def on_throwaway_postgres(
    settings: Settings, throwaway_postgres: ThrowawayPostgres, settings_factory: Any
) -> AsyncIterator[Settings]:
    await db.aclose()
    chosen: Settings = settings_factory(database_url=throwaway_postgres.url, db_pool_timeout=1.0, db_pool_max=8)
    with use_settings(chosen):
        yield chosen
        await db.aclose()
        await cache.aclose()


@dataclass
class Outcome:
    started: float
    seconds: float
    status: int
    kind: str


@dataclass
class Load:
    """Workers sending requests until stopped, recording every outcome."""

    outcomes: list[Outcome] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, workers: int, request: Callable[[int, int], Awaitable[tuple[str, int]]]) -> None:
        loop = asyncio.get_running_loop()

        async def worker(number: int) -> None:
            sequence = 0
            while not self.stop.is_set():
                sequence += 1
                started = loop.time()
                kind, status = await request(number, sequence)
                self.outcomes.append(Outcome(started, loop.time() - started, status, kind))
                await asyncio.sleep(0.01)

        await asyncio.gather(*(worker(number) for number in range(workers)))


@pytest.fixture
async def functions_on_http(settings: Settings) -> AsyncIterator[Callable[[str], str]]:
    """Every function target on one real HTTP port, ``/<target>/…`` to the target, as a
    broker reaches them: yields the URL of a target."""
    import uvicorn

    from tests.conftest import free_port, function_app

    async def route(scope: Any, receive: Any, send: Any) -> None:
        await function_app(scope["path"].split("/")[1])(scope, receive, send)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(route, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
        await asyncio.sleep(0.01)
    yield lambda target: f"http://127.0.0.1:{port}/{target}/"
    server.should_exit = True
    await task
