"""A burst of cached reads larger than the Redis connection pool: every read still hits."""

from __future__ import annotations

import asyncio

from quill import cache
from quill.reads import store
from quill.settings import Settings


async def test_a_burst_beyond_the_connection_limit_waits_for_a_connection(settings: Settings) -> None:
    name = cache.key("article", "burst")
    view = {"slug": "burst", "title": "Burst"}
    await store.store_view(name, view)
    # More than the pool holds: the rest wait their turn rather than fail open into misses
    # (which would send every one of them to PostgreSQL).
    found = await asyncio.gather(*(store.load_view(name) for _ in range(400)))
    assert found == [(view, None)] * 400
    await cache.aclose()
