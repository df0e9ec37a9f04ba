"""One instance of an expensive client per process: created on first use, closed on shutdown.

functions-framework gives a function no startup hook (and a scale-from-zero start
should not pay for what a request never uses), so the PostgreSQL pool, the Redis
client and the broker's HTTP client are each a ``Lazy``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Lazy"]

T = TypeVar("T")


class Lazy(Generic[T]):
    def __init__(self, create: Callable[[], Awaitable[T]], close: Callable[[T], Awaitable[None]]) -> None:
        self._create = create
        self._close = close
        self._value: T | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> T:
        if self._value is not None:
            return self._value
        async with self._lock:
            if self._value is None:
                self._value = await self._create()
        return self._value

    async def aclose(self) -> None:
        async with self._lock:
            if self._value is not None:
                value, self._value = self._value, None
                await self._close(value)
