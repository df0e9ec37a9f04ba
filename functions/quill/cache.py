"""Redis: one client per process, and cache-aside views that never outrank PostgreSQL.

Redis is never the only copy of anything. Every call here fails open: when Redis is
away the caller gets a miss (or nothing happens), the failure is logged and counted,
and the request is answered from PostgreSQL.

Invalidation writes a short-lived tombstone instead of deleting, and fills use
``SET NX``: a reader that loaded a row before a write committed cannot put the old
view back after the writer invalidated it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from quill.lazy import Lazy
from quill.observability import DEPENDENCY_ERRORS, get_logger
from quill.settings import get_settings

if TYPE_CHECKING:
    import redis.asyncio as redis

__all__ = ["aclose", "failures", "get_redis", "invalidate", "key", "load_view", "ping", "report_outage", "store_view"]

_TOMBSTONE = b"-"
_TOMBSTONE_SECONDS = 10


def failures() -> tuple[type[Exception], ...]:
    """What a Redis call raises when Redis is away. A function, so that importing this
    module does not import redis: that is ~80 ms of a cold start, and a function whose
    first requests never touch Redis (``posts`` listing) should not pay it up front."""
    from redis.exceptions import RedisError

    return (RedisError, OSError)


async def _connect() -> redis.Redis:
    import redis.asyncio as redis

    settings = get_settings()
    # Blocking: past the limit a call waits (up to the Redis timeout) for a connection
    # instead of failing with "Too many connections", which turned a burst of 128
    # concurrent reads into misses answered by PostgreSQL. 128, above a replica's
    # containerConcurrency (100): with 32, a busy event loop kept connections checked out
    # long enough that calls queued for the whole timeout (mixed bench, 500 users).
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        health_check_interval=30,
        max_connections=128,
        timeout=settings.redis_timeout,
    )
    return redis.Redis.from_pool(pool)


async def _disconnect(client: redis.Redis) -> None:
    await client.aclose()


_client: Lazy[redis.Redis] = Lazy(_connect, _disconnect)
get_redis = _client.get
aclose = _client.aclose
_log = get_logger("quill.cache")


def key(*parts: str | int) -> str:
    """A namespaced key: ``<prefix><part>:<part>``."""
    return get_settings().redis_prefix + ":".join(str(part) for part in parts)


def report_outage(operation: str, exc: BaseException) -> None:
    """Count and log a Redis call that failed and was answered by a fallback."""
    DEPENDENCY_ERRORS.labels("redis", operation).inc()
    _log.warning("redis_unavailable", operation=operation, error=type(exc).__name__)


async def load_view(name: str) -> dict[str, Any] | None:
    """The cached JSON view under ``name``, or None on a miss, a tombstone or an outage."""
    try:
        raw = await (await get_redis()).get(name)
    except failures() as exc:
        report_outage("cache", exc)
        return None
    if raw is None or raw == _TOMBSTONE:
        return None
    view: dict[str, Any] = orjson.loads(raw)
    return view


async def store_view(name: str, view: dict[str, Any]) -> None:
    """Fill a miss; a tombstone left by a concurrent write wins over this (older) view."""
    try:
        await (await get_redis()).set(name, orjson.dumps(view), ex=get_settings().cache_ttl, nx=True)
    except failures() as exc:
        report_outage("cache", exc)


async def invalidate(names: Iterable[str], *, strict: bool = False) -> None:
    """Tombstone views; ``strict`` raises on an outage (an event consumer then asks for a retry)."""
    names = list(names)
    if not names:
        return
    try:
        client = await get_redis()
        async with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.set(name, _TOMBSTONE, ex=_TOMBSTONE_SECONDS)
            await pipe.execute()
    except failures() as exc:
        report_outage("cache", exc)
        if strict:
            raise


async def ping() -> bool:
    try:
        return bool(await (await get_redis()).ping())
    except failures():
        return False
