"""What the broker does with what the event functions answer, over real HTTP: a bug in a
handler is retried (and delivered once fixed), data that breaks its schema is parked at
once, and a Redis outage longer than the retries parks no cache invalidation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cloudevents.http import CloudEvent

from quill import cache, events
from quill.domain import search as index
from quill.observability import registry
from quill.reads import store
from quill.settings import Settings, use_settings
from quill_tools.broker.config import BrokerConfig, Delivery, TriggerConfig
from quill_tools.broker.local import LocalBroker
from tests.conftest import Api
from tests.event.conftest import article_id_of, emitted
from tests.integration.test_redis_outage import ThrowawayRedis

# Spent in well under a second: any outage of the test outlasts them.
FAST = Delivery(retry=3, backoff_policy="linear", backoff_delay=0.05, timeout=5.0, dead_letter_service="deadletter")


def event(event_type: str, data: Any) -> CloudEvent:
    attributes = {"type": event_type, "source": "/test", "id": str(uuid.uuid4()), "datacontenttype": "application/json"}
    return CloudEvent(attributes, data)


def rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute(sql.encode()).fetchall()


@pytest.fixture
async def broker(
    settings: Settings, functions_on_http: Callable[[str], str]
) -> AsyncIterator[Callable[[str, str], LocalBroker]]:
    """A local broker with one Trigger (``type`` -> ``target``) and the real ``deadletter`` sink."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    def start(target: str, event_type: str) -> LocalBroker:
        config = BrokerConfig("quill", "default", FAST, [TriggerConfig(target, target, {"type": event_type})])
        started = LocalBroker(config, functions_on_http)
        tasks.append(asyncio.create_task(started.run(stop)))
        return started

    yield start
    stop.set()
    await asyncio.gather(*tasks)


def outages() -> float:
    return (
        registry().get_sample_value("quill_dependency_errors_total", {"dependency": "redis", "operation": "cache"})
        or 0.0
    )


async def settled(settings: Settings, count: int, within: float = 20) -> list[tuple[Any, ...]]:
    """(trigger, state, dead_lettering, last_status) of every delivery, once none is pending."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = rows(settings, "SELECT trigger, state, dead_lettering, last_status FROM broker_deliveries ORDER BY id")
        if len(found) >= count and all(row[1] != "pending" for row in found):
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"deliveries did not settle: {found}")
        await asyncio.sleep(0.05)


async def test_a_handler_bug_is_retried_by_the_broker_and_delivered_once_fixed(
    api: Api, settings: Settings, broker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await api.register("alice")
    slug = (await api.create_article(alice, "Dragons of the north"))["slug"]
    good = event(events.ARTICLE_CREATED, emitted(events.ARTICLE_CREATED, article_id_of(slug)))
    reindex = index.reindex
    calls = 0

    async def buggy_then_fixed(*args: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls <= 2:  # two attempts meet the bug, then the fix is deployed
            raise KeyError("id")
        return await reindex(*args)

    monkeypatch.setattr(index, "reindex", buggy_then_fixed)
    await broker("search", events.ARTICLE_CREATED).ingest(good)

    assert await settled(settings, 1) == [("search", "delivered", False, 202)]
    assert calls == 3
    assert rows(settings, "SELECT count(*) FROM dead_letters") == [(0,)]
    assert (await api.get("/api/articles?q=dragons")).json()["articlesCount"] == 1


async def test_a_schema_invalid_event_is_dead_lettered_at_the_first_attempt(
    settings: Settings, broker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    async def count_calls(*args: Any) -> bool:
        nonlocal calls
        calls += 1
        return True

    monkeypatch.setattr(index, "reindex", count_calls)
    await broker("search", events.ARTICLE_CREATED).ingest(event(events.ARTICLE_CREATED, {"id": 1}))

    assert await settled(settings, 1) == [("search", "delivered", True, 202)]  # handed to the sink, which took it
    assert rows(settings, "SELECT error_code, error_dest LIKE '%/search/' FROM dead_letters") == [("422", True)]
    assert calls == 0


async def test_a_redis_outage_longer_than_the_retries_sends_no_invalidation_to_the_dead_letters(
    settings: Settings, settings_factory: Any, broker: Any, tmp_path: Path
) -> None:
    redis_server = ThrowawayRedis(tmp_path)
    redis_server.start()
    await cache.aclose()
    chosen = settings_factory(redis_url=redis_server.url, redis_timeout=0.2)
    try:
        with use_settings(chosen):
            name = cache.key("view:article:hot")
            await store.store_view(name, {"title": "before the change"})
            ttl = await (await cache.get_redis()).pttl(name)
            redis_server.stop()
            before = outages()
            started = broker("cache", events.ARTICLE_FAVORITED)
            favorited = {"article": {"id": 1, "slug": "hot"}, "user": {"id": 2, "username": "bob"}, "favoritesCount": 1}
            for _ in range(20):
                await started.ingest(event(events.ARTICLE_FAVORITED, favorited))
            found = await settled(settings, 20)
            counted = outages() - before
            await cache.aclose()
    finally:
        redis_server.stop()

    assert found == [("cache", "delivered", False, 202)] * 20  # each at its first attempt
    assert rows(settings, "SELECT count(*) FROM dead_letters") == [(0,)]
    assert counted >= 20  # each missed invalidation is logged and counted
    # What bounds the staleness instead: a view Redis held when the outage began dies by itself.
    assert 0 < ttl <= chosen.cache_ttl * 1000
    print(f"20 invalidations with Redis stopped: 20 accepted at the first attempt, 0 dead letters; view ttl {ttl} ms")
