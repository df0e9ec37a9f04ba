"""Fixed-window rate limits in Redis, shared by every replica of every function.

A limit that cannot reach Redis lets the request through (fails open): an outage of
the cache must not lock users out. Windows expire on their own, so nobody is locked
out for longer than one window.
"""

from __future__ import annotations

from quill.cache import failures, get_redis, key, report_outage
from quill.errors import RateLimitedError
from quill.observability import RATE_LIMITED
from quill.settings import RateLimit

__all__ = ["hit", "reset"]


def _key(name: str, subject: str) -> str:
    return key("rl", name, subject)


async def hit(name: str, subject: str, limit: RateLimit) -> None:
    """Count one hit; raise 429 (with Retry-After) once the window is over its limit."""
    if limit.limit == 0:
        return
    counter = _key(name, subject)
    try:
        client = await get_redis()
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(counter, 0, ex=limit.window, nx=True)  # opens the window (any Redis >= 2.6.12)
            pipe.incr(counter)
            pipe.ttl(counter)
            _, count, ttl = await pipe.execute()
    except failures() as exc:
        report_outage("rate_limit", exc)
        return
    if int(count) > limit.limit:
        RATE_LIMITED.labels(name).inc()
        raise RateLimitedError("rate_limit", int(ttl) if int(ttl) > 0 else limit.window)


async def reset(name: str, subject: str) -> None:
    try:
        await (await get_redis()).delete(_key(name, subject))
    except failures() as exc:
        report_outage("rate_limit", exc)
