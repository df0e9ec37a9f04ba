"""The views this process read last, kept in its memory in front of Redis.

A cached read from Redis is a network round trip and a JSON parse, and a hot article
is read thousands of times between two writes. ``NearCache`` keeps recent values in a
bounded LRU, under three rules that keep it from outranking Redis and PostgreSQL:

- It is trusted only while this process hears every invalidation (``cache`` listens on
  the channel each one is published to). Until then, and after any gap in listening,
  it is empty and off: ``get`` misses and ``put`` stores nothing.
- A value read before an invalidation arrived is never stored after it: callers take
  the ``epoch`` before they read and ``put`` refuses a value from an older epoch.
- Every copy also expires within ``ttl`` seconds, a bound for a publish that a writer
  lost (Redis away at that moment). Each lives a random 80-100% of it, so the copies
  made together (every viewer's feed page after a start or a write) do not all expire
  together and send their rebuilds to PostgreSQL in one burst. A copy read in the last
  quarter of its life is ``due``: a caller that can build it again does so in the
  background while readers still get this copy, so a hot value never expires under them.

It is bounded twice: by entries and by bytes (each ``put`` says what its value weighs),
so a client asking for thousands of distinct large pages cannot grow a replica's memory.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Iterable

__all__ = ["NearCache"]

# A copy lives between (1 - _SPREAD) x ttl and ttl.
_SPREAD = 0.2
# A copy with less than this share of the ttl left is due for a rebuild.
_DUE = 0.25


class NearCache:
    def __init__(self, capacity: int, ttl: float, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.epoch = 0
        self.on = False
        self.size = 0
        self._entries: OrderedDict[str, tuple[float, object, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> object | None:
        if not self.on:
            return None
        entry = self._entries.get(name)
        if entry is None:
            return None
        expires, value, _ = entry
        if expires < time.monotonic():
            self._forget(name)
            return None
        self._entries.move_to_end(name)
        return value

    def due(self, name: str) -> bool:
        """Whether the copy under ``name`` is in the last quarter of its life."""
        entry = self._entries.get(name)
        return entry is not None and entry[0] - time.monotonic() < self.ttl * _DUE

    def expiry(self, name: str) -> float | None:
        """When the copy under ``name`` expires (``time.monotonic()``), if one is held."""
        entry = self._entries.get(name)
        return None if entry is None else entry[0]

    def put(self, name: str, value: object, epoch: int, size: int, *, until: float | None = None) -> None:
        """Keep ``value`` (about ``size`` bytes), read at ``epoch``, unless an invalidation
        arrived since; not past ``until``, for a copy of another copy."""
        if not self.on or epoch != self.epoch or self.capacity == 0 or size > self.max_bytes // 4:
            return
        self._forget(name)
        lifetime = self.ttl * (1.0 - _SPREAD * random.random())  # noqa: S311 - not a secret
        expires = time.monotonic() + lifetime
        self._entries[name] = (expires if until is None else min(expires, until), value, size)
        self.size += size
        while len(self._entries) > self.capacity or self.size > self.max_bytes:
            self._forget(next(iter(self._entries)))

    def drop(self, names: Iterable[str] = (), prefixes: Iterable[str] = ()) -> None:
        """Forget ``names``, and every name that starts with one of ``prefixes``."""
        self.epoch += 1
        for name in names:
            self._forget(name)
        for prefix in prefixes:
            for stale in [held for held in self._entries if held.startswith(prefix)]:
                self._forget(stale)

    def reset(self, *, on: bool) -> None:
        """Forget everything; ``on`` says whether invalidations are being heard from now on."""
        self.epoch += 1
        self._entries.clear()
        self.size = 0
        self.on = on

    def _forget(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is not None:
            self.size -= entry[2]
