"""Concurrent invalidations share Redis writes: fewer messages than writes, none lost,
and each caller returns only once Redis has its change (read-your-writes)."""

from __future__ import annotations

import asyncio

import orjson
import redis.asyncio as redis

from quill.cache import key
from quill.reads import store
from quill.settings import Settings


async def test_concurrent_invalidations_are_written_together_and_none_is_lost(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(key("invalidations"))
    try:
        assert (await pubsub.get_message(timeout=1.0) or {}).get("type") == "subscribe"
        names = [key("article", f"batched-{n}") for n in range(40)]

        async def write(name: str) -> None:
            await store.invalidate([name], prefixes=[key("list", "")])
            assert (await client.get(name) or b"")[:1] == b"-", "returned before Redis had the tombstone"

        await asyncio.gather(*(write(name) for name in names))

        dropped: set[str] = set()
        messages = 0
        while (message := await pubsub.get_message(timeout=0.5)) is not None:
            if message["type"] == "message":
                messages += 1
                body = orjson.loads(message["data"])
                dropped.update(body["names"])
                assert body["prefixes"] == [key("list", "")]
        assert dropped == set(names)
        assert messages < len(names), "each write sent a message of its own"
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


async def test_a_lone_invalidation_is_written_at_once(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        name = key("article", "alone")
        await store.invalidate([name])
        assert (await client.get(name) or b"")[:1] == b"-"
    finally:
        await client.aclose()
