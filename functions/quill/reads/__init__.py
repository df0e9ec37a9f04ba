"""The read side: the one owner of caching.

- ``articles``, ``profiles``, ``users``: the cached reads the entry modules call (an
  article, a list or feed page; a profile; the signed-in user's own record), rendered to
  bytes where they are kept; each imports only the domain module it reads, so a
  function's cold start pays only for its own;
- ``sessions``: whether a session is live, as every signed-in request asks;
- ``store``: Redis views with tombstones, each process's near cache and its epochs,
  single-flight builds, and the listener that hears every invalidation (its lifecycle);
- ``stale``: one table from a change (an event, or a write with no event) to the views
  it makes stale, applied by ``outbox.transaction`` after commit;
- ``keys``: every cache key, spelled once; ``near``: the bounded in-memory LRU.

To change how a read is cached, edit its module here (or ``store`` for the machinery); to make a
write drop a view, add one line to ``stale.STALE``. Nothing is imported here, so that
``outbox`` can import ``stale`` without the domain the views read.
"""

__all__: list[str] = []
