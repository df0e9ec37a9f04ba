"""Concurrent invalidations share Redis writes: fewer messages than writes, none lost,
and each caller returns only once Redis has its change (read-your-writes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest
import redis.asyncio as redis

from quill.cache import key
from quill.reads import store
from quill.settings import Settings


@asynccontextmanager
async def _listening(settings: Settings) -> AsyncIterator[tuple[redis.Redis, redis.client.PubSub]]:
    """A Redis client, and a subscription to the invalidations that is live when the block starts."""
    client = redis.Redis.from_url(settings.redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(key("invalidations"))
    try:
        assert (await pubsub.get_message(timeout=1.0) or {}).get("type") == "subscribe"
        yield client, pubsub
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


async def test_concurrent_invalidations_are_written_together_and_none_is_lost(settings: Settings) -> None:
    async with _listening(settings) as (client, pubsub):
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


async def _messages(pubsub: redis.client.PubSub) -> list[list[str]]:
    """The names of each invalidation message heard, in order."""
    heard: list[list[str]] = []
    while (message := await pubsub.get_message(timeout=0.5)) is not None:
        if message["type"] == "message":
            heard.append(orjson.loads(message["data"])["names"])
    return heard


async def _one_then_two(name: str) -> None:
    """A call, then, once its writer has had its turn on the loop, another."""
    first = asyncio.ensure_future(store.invalidate([f"{name}-a"]))
    await asyncio.sleep(0)
    await asyncio.gather(first, store.invalidate([f"{name}-b"]))


async def test_after_a_crowded_batch_the_next_waits_for_company(settings: Settings) -> None:
    """A batch of several callers says writes are coming together: the next batch waits a
    moment, so a call made just after it rides in the same message."""
    async with _listening(settings) as (_, pubsub):
        crowd = [key("article", f"crowd-{n}") for n in range(2)]
        await asyncio.gather(*(store.invalidate([name]) for name in crowd))
        await _one_then_two(key("article", "after-crowd"))
        heard = await _messages(pubsub)
        assert heard[-1] == [key("article", "after-crowd-a"), key("article", "after-crowd-b")], heard


async def test_a_lone_writer_never_waits_for_company(settings: Settings) -> None:
    """After batches of one caller each, a batch is written as soon as its writer runs: the
    call made just after it goes in the next message, not held back to share one."""
    async with _listening(settings) as (_, pubsub):
        await store.invalidate([key("article", "lone")])
        await _one_then_two(key("article", "lone-next"))
        heard = await _messages(pubsub)
        assert heard[-2:] == [[key("article", "lone-next-a")], [key("article", "lone-next-b")]], heard


async def test_a_lone_invalidation_is_written_at_once(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        name = key("article", "alone")
        await store.invalidate([name])
        assert (await client.get(name) or b"")[:1] == b"-"
    finally:
        await client.aclose()


async def test_a_writer_cancelled_while_it_waits_for_company_leaves_no_caller_hanging(settings: Settings) -> None:
    """Shutdown cancels the writer task; a call whose batch was waiting for company is
    cancelled with it rather than left waiting for a write that will never come."""
    crowd = [key("article", f"shutdown-crowd-{n}") for n in range(2)]
    await asyncio.gather(*(store.invalidate([name]) for name in crowd))
    waiting = asyncio.ensure_future(store.invalidate([key("article", "shutdown-waiting")]))
    await asyncio.sleep(0)  # the call joins and starts a writer
    await asyncio.sleep(0)  # the writer starts its wait for company
    writers = [task for task in store._batches.writers.values() if not task.done()]  # what a shutdown cancels
    assert writers, "no writer is waiting"
    for writer in writers:
        writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, timeout=5)
