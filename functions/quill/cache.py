"""Redis: one client per process, for the read side, rate limits and readiness.

Redis is never the only copy of anything. Every caller fails open: when Redis is away
it gets a failure from ``failures()``, reports it (``report_outage``) and answers from
PostgreSQL, or lets the request through. What is kept in Redis and in memory, and when
it is dropped, belongs to the read side (``quill.reads``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quill.lazy import Lazy
from quill.observability import DEPENDENCY_ERRORS, get_logger
from quill.settings import get_settings

if TYPE_CHECKING:
    import redis.asyncio as redis

__all__ = ["aclose", "failures", "get_redis", "key", "ping", "report_outage"]


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
_log = get_logger("quill.cache")


async def aclose() -> None:
    """Stop the read side (its listener holds a connection of its own), then the client."""
    from quill.reads import store  # the read side is imported by the functions that read

    await store.aclose()
    await _client.aclose()


def key(*parts: str) -> str:
    """A namespaced key: ``<prefix><part>:<part>``. Text parts only: built on every cached
    read, and a ``map(str, ...)`` over them cost more than the rest of the call."""
    return get_settings().redis_prefix + ":".join(parts)


def report_outage(operation: str, exc: BaseException, count: int = 1) -> None:
    """Count and log Redis calls that failed and were answered by a fallback (``count``
    of them when one Redis write carried several callers' changes)."""
    DEPENDENCY_ERRORS.labels("redis", operation).inc(count)
    _log.warning("redis_unavailable", operation=operation, error=type(exc).__name__, calls=count)


async def ping() -> bool:
    try:
        return bool(await (await get_redis()).ping())
    except failures():
        return False
