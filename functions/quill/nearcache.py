"""The views this process read last, kept in its memory in front of Redis.

A cached read from Redis is a network round trip and a JSON parse, and a hot article
is read thousands of times between two writes. ``NearCache`` keeps recent values in a
bounded LRU, under three rules that keep it from outranking Redis and PostgreSQL:

- It is trusted only while this process hears every invalidation (``cache`` listens on
  the channel each one is published to). Until then, and after any gap in listening,
  it is empty and off: ``get`` misses and ``put`` stores nothing.
- A value read before an invalidation arrived is never stored after it: callers take
  the ``epoch`` before they read and ``put`` refuses a value from an older epoch.
- Every copy also expires after ``ttl`` seconds, a bound for a publish that a writer
  lost (Redis away at that moment).

A name ending in ``*`` drops every name that starts with what precedes it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable

__all__ = ["NearCache"]


class NearCache:
    def __init__(self, capacity: int, ttl: float) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self.epoch = 0
        self.on = False
        self._entries: OrderedDict[str, tuple[float, object]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> object | None:
        if not self.on:
            return None
        entry = self._entries.get(name)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            del self._entries[name]
            return None
        self._entries.move_to_end(name)
        return value

    def put(self, name: str, value: object, epoch: int) -> None:
        """Keep ``value``, read at ``epoch``, unless an invalidation arrived since."""
        if not self.on or epoch != self.epoch or self.capacity == 0:
            return
        self._entries[name] = (time.monotonic() + self.ttl, value)
        self._entries.move_to_end(name)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def drop(self, names: Iterable[str]) -> None:
        self.epoch += 1
        for name in names:
            if name.endswith("*"):
                start = name[:-1]
                for stale in [held for held in self._entries if held.startswith(start)]:
                    del self._entries[stale]
            else:
                self._entries.pop(name, None)

    def reset(self, *, on: bool) -> None:
        """Forget everything; ``on`` says whether invalidations are being heard from now on."""
        self.epoch += 1
        self._entries.clear()
        self.on = on
