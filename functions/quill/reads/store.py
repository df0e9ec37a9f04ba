"""Cached views: Redis behind, each process's memory in front, one build per change.

Every call here fails open: when Redis is away the caller gets a miss (or nothing
happens), the failure is logged and counted, and the request is answered from PostgreSQL.

Invalidation writes a short-lived tombstone instead of deleting, and fills use
``SET NX``: a reader that loaded a row before a write committed cannot put the old
view back after the writer invalidated it. Each tombstone is unique to the write that
left it, and a reader that found one may replace that very tombstone (and no later
one): its load began after the write committed, so the first read after a write fills
the cache again, rather than every read for the tombstone's ten seconds.

In front of Redis each process keeps the views it read last (``near``, a ``NearCache``);
every invalidation is also published on one channel, and a listener task drops the
copies in every process. ``shared`` builds a value that lives only there (an anonymous
list page) once, however many requests ask for it at the same moment.

The listener is this module's one background task, with an explicit lifecycle: ``start``
(by the read side's calls, the first time the process reads, as the pools are opened on
first use; again if the settings in force change, as between tests) and ``aclose`` (with
the Redis client, from ``aclose_all`` at shutdown). Nothing else starts or stops it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import orjson

from quill.cache import failures, get_redis, key, report_outage
from quill.observability import get_logger
from quill.reads.near import NearCache
from quill.settings import get_settings

if TYPE_CHECKING:
    import redis.asyncio as redis

__all__ = [
    "aclose",
    "announce",
    "flag",
    "held",
    "invalidate",
    "keep",
    "load_view",
    "near",
    "recall",
    "rendered",
    "shared",
    "start",
    "store_view",
    "through",
]

_TOMBSTONE = b"-"  # a tombstone is this, then a token of the write that left it
_TOMBSTONE_SECONDS = 10
# A fill that replaces the tombstone it found, only if that one is still there.
_REPLACE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return false
"""
# The listener pings this often when the channel is quiet, and gives the connection up
# (turning the near cache off) after three beats without an answer.
_HEARTBEAT_SECONDS = 1.0


@dataclass(eq=False)
class _Flight:
    """A build of the value under a name, begun at ``epoch`` from ``sources``: joined only
    by a caller that asks at that epoch for a value made from those very objects. A build
    that a newer one replaced is not kept, even if it lands last."""

    epoch: int
    sources: tuple[object, ...]
    future: asyncio.Future[bytes]
    background: bool = False  # begun for a copy still held: no reader waits for it
    replaced: bool = False

    def joins(self, epoch: int, sources: tuple[object, ...]) -> bool:
        return (
            self.epoch == epoch
            and len(self.sources) == len(sources)
            and all(mine is theirs for mine, theirs in zip(self.sources, sources, strict=True))
        )


near = NearCache(capacity=0, ttl=0.0)
_log = get_logger("quill.reads.store")
_listener: asyncio.Task[None] | None = None
_listening_on: str | None = None  # the key prefix whose channel the listener hears
_flights: dict[str, _Flight] = {}


def _channel() -> str:
    return key("invalidations")


def start() -> None:
    """Size the near cache and start hearing invalidations, for the settings in force.

    Idempotent and cheap once open: the read side's calls make sure of it before they
    read. Until the listener has subscribed the near cache stays off (every read goes
    to Redis), so opening never delays a request."""
    global _listener, _listening_on
    settings = get_settings()
    if settings.redis_prefix == _listening_on and (_listener is None or not _listener.done()):
        return
    channel = _channel()
    if _listener is not None:
        _listener.cancel()
    near.reset(on=False)
    near.capacity, near.ttl = settings.near_cache_size, settings.near_cache_seconds
    near.max_bytes = settings.near_cache_mb * 1024 * 1024
    _listening_on = settings.redis_prefix
    # A context of its own: not the log fields and trace of the request that opened it.
    loop = asyncio.get_running_loop()
    _listener = loop.create_task(_hear(channel), context=contextvars.Context()) if settings.near_cache_size else None


# Marks this process's own messages: it dropped its copies before and after sending them,
# so hearing them again would only drop what it has rebuilt since (read-your-writes holds
# without it: ``NearCache.drop`` moves the epoch, so no read from before can put back).
_ORIGIN = f"{random.getrandbits(64):016x}"


def _drops(data: bytes) -> tuple[list[str], list[str]]:
    """The names and prefixes a message drops: none for this process's own; everything for
    one this version cannot read."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return [], [""]
    if not isinstance(message, dict):
        return [], [""]
    if message.get("origin") == _ORIGIN:
        return [], []
    names, prefixes = message.get("names", []), message.get("prefixes", [])
    if all(isinstance(part, list) and all(isinstance(item, str) for item in part) for part in (names, prefixes)):
        return names, prefixes
    return [], [""]


async def aclose() -> None:
    """Stop hearing invalidations and forget what this process holds (shutdown)."""
    global _listener, _listening_on
    listener, _listener, _listening_on = _listener, None, None
    if listener is not None:
        listener.cancel()
        # Bounded: shutting down must not wait on a connection in doubt.
        await asyncio.wait([listener], timeout=3 * _HEARTBEAT_SECONDS)
    near.reset(on=False)
    for flight in _flights.values():
        flight.future.cancel()
    _flights.clear()


async def _hear(channel: str) -> None:
    """Keep ``near`` honest: on while subscribed, emptied at every (re)subscription, and
    off (and empty) from the moment the connection is in doubt."""
    import redis.asyncio as redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    settings = get_settings()
    me = asyncio.current_task()
    pause = 0.1
    while me is None or not me.cancelling():
        # No retries inside redis-py: a silent reconnect would hide the messages it missed.
        client = redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=settings.redis_timeout, retry=Retry(NoBackoff(), 0)
        )
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel)
            heard = pinged = time.monotonic()
            # redis-py can swallow a cancel that lands inside its read timeout: ask the task.
            while me is None or not me.cancelling():
                message = await pubsub.get_message(timeout=_HEARTBEAT_SECONDS)
                now = time.monotonic()
                if message is not None:
                    heard = now
                    if message["type"] == "subscribe":
                        near.reset(on=True)
                        pause = 0.1
                    elif message["type"] == "message":
                        names, prefixes = _drops(message["data"])
                        if names or prefixes:
                            near.drop(names, prefixes)
                if now - pinged >= _HEARTBEAT_SECONDS:
                    await pubsub.ping()
                    pinged = now
                if now - heard > 3 * _HEARTBEAT_SECONDS:
                    raise ConnectionError("no answer to the heartbeat")
        except failures() as exc:
            report_outage("near_cache", exc)
        finally:
            near.reset(on=False)
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
            await client.aclose()
        await asyncio.sleep(pause)
        pause = min(pause * 2, 5.0)


def recall(name: str) -> object | None:
    """This process's copy of ``name``, if it holds one it can trust (see ``NearCache``)."""
    return near.get(name)


def announce(pipe: redis.client.Pipeline, names: Sequence[str], prefixes: Sequence[str] = ()) -> None:
    """Queue on ``pipe`` the message that makes every process drop its copies of ``names``
    and of every name starting with one of ``prefixes``. The caller drops this process's
    own before the pipeline runs and again after it: a read that fetched the old value
    from Redis in between must not stay in memory."""
    pipe.publish(_channel(), orjson.dumps({"names": list(names), "prefixes": list(prefixes), "origin": _ORIGIN}))


async def load_view(name: str) -> tuple[dict[str, Any] | None, bytes | None]:
    """The cached JSON view under ``name`` (None on a miss or an outage), and the tombstone
    found in its place, if any: hand it to ``store_view`` with the view loaded after.

    The view may be shared with other requests of this process: never change it."""
    held = recall(name)
    if held is not None:
        return cast(dict[str, Any], held), None
    epoch = near.epoch
    try:
        raw = await (await get_redis()).get(name)
    except failures() as exc:
        report_outage("cache", exc)
        return None, None
    if raw is None:
        return None, None
    if raw[:1] == _TOMBSTONE:
        return None, cast(bytes, raw)
    view: dict[str, Any] = orjson.loads(raw)
    near.put(name, view, epoch, len(raw))
    return view, None


def held(name: str, *sources: object) -> bytes | None:
    """The body this process keeps under ``name`` (``keep``) if it was made from these
    very ``sources`` objects; a new view, page or set of marks (after a write) misses."""
    value = recall(name)
    if not isinstance(value, tuple) or len(value) != len(sources) + 1:
        return None
    for kept, source in zip(value, sources, strict=False):  # a loop, not all(): on every signed-in read
        if kept is not source:
            return None
    return cast(bytes, value[-1])


def keep(name: str, body: bytes, *sources: object, epoch: int) -> None:
    """Keep ``body``, made from ``sources``, for ``held``; ``epoch`` as read before making it."""
    near.put(name, (*sources, body), epoch, len(body))


def rendered(name: str, view: object, render: Callable[[], bytes]) -> bytes:
    """``render()`` of the view this process holds under ``name``, kept beside it.

    The copy is tied to that very object, not to ``name``: an invalidation replaces the
    view with a new one read from Redis, and the next caller renders again. So no write
    path has to know these copies exist."""
    memo = name + "\x00rendered"
    held = recall(memo)
    if isinstance(held, tuple) and held[0] is view:
        return cast(bytes, held[1])
    body = render()
    near.put(memo, (view, body), near.epoch, len(body))
    return body


async def shared(
    name: str,
    build: Callable[[], Awaitable[bytes]],
    *,
    alias: str | None = None,
    made_from: tuple[object, ...] = (),
) -> bytes:
    """A value kept only in this process's memory, built by one caller while the others
    that ask at the same time wait for it. A build that began before an invalidation
    is neither joined nor kept by a caller that came after it.

    With ``made_from`` the value holds only while the caller passes these very objects
    (as ``held`` and ``keep``): a new page or new marks, after a write, build again.
    With ``alias`` (another spelling of the same request) the value is kept under that
    name too, under the same rule: not if an invalidation arrived since this call began."""
    epoch = near.epoch
    body = held(name, *made_from) if made_from else cast(bytes | None, recall(name))
    if body is None:
        flight = _flights.get(name)
        if flight is None or not flight.joins(epoch, made_from):
            flight = _fly(name, build, epoch, made_from)
        body = await asyncio.shield(flight.future)
    elif near.due(name) and name not in _flights:
        _fly(name, build, epoch, made_from, background=True)  # this reader keeps the copy
    if alias is not None:  # never outlives the copy it repeats
        near.put(alias, body, epoch, len(body), until=near.expiry(name))
    return body


def _fly(
    name: str,
    build: Callable[[], Awaitable[bytes]],
    epoch: int,
    sources: tuple[object, ...],
    *,
    background: bool = False,
) -> _Flight:
    replaced = _flights.get(name)
    if replaced is not None:
        replaced.replaced = True
    flight = _flights[name] = _Flight(epoch, sources, asyncio.ensure_future(build()), background)
    flight.future.add_done_callback(functools.partial(_landed, name, flight))
    return flight


def _landed(name: str, flight: _Flight, done: asyncio.Future[bytes]) -> None:
    if _flights.get(name) is flight:
        del _flights[name]
    if done.cancelled():
        return
    if (error := done.exception()) is not None:  # retrieved here, whoever else waits
        if flight.background:  # nobody waits: say so (the copy stays until it expires)
            _log.warning("near_cache_rebuild_failed", name=name, error=type(error).__name__)
        return
    if flight.replaced:
        return
    body = done.result()
    if flight.sources:
        near.put(name, (*flight.sources, body), flight.epoch, len(body))
        return
    # A rebuild that found what was there keeps that very object: what was made from it
    # (a page flagged with these marks) stays good.
    held = recall(name)
    near.put(name, held if held == body else body, flight.epoch, len(body))


async def store_view(name: str, view: dict[str, Any], tombstone: bytes | None = None) -> None:
    """Fill a miss: only where nothing is (a tombstone left by a concurrent write wins over
    this view, loaded before it), or over the very ``tombstone`` the reader found before
    loading the view (``load_view``), which is then at least as new as that write."""
    try:
        client = await get_redis()
        if tombstone is None:
            await client.set(name, orjson.dumps(view), ex=get_settings().cache_ttl, nx=True)
        else:
            await client.eval(_REPLACE, 1, name, tombstone, orjson.dumps(view), get_settings().cache_ttl)
    except failures() as exc:
        report_outage("cache", exc)


async def through(name: str, load: Callable[..., Awaitable[dict[str, Any]]], *args: Any) -> dict[str, Any]:
    """The view under ``name``: this process's copy, else Redis's, else ``load(*args)``'s,
    kept in Redis for the next reader (``store_view``). ``load`` raises if there is nothing.
    (``args`` rather than a partial: a hit, the common case, builds nothing.)"""
    view, tombstone = await load_view(name)
    if view is None:
        view = await load(*args)
        await store_view(name, view, tombstone)
    return view


async def flag(name: str, load: Callable[[], Awaitable[bool]], *, seconds: int, operation: str) -> bool:
    """A yes/no answer: a yes from this process's memory, then either from Redis (kept
    ``seconds``), then ``load()``'s. Only a yes is kept in memory, so a no (a revoked
    session) is never served after a yes could be (``invalidate(..., marker=b"0")``)."""
    if recall(name) is True:
        return True
    epoch = near.epoch
    try:
        client = await get_redis()
        cached = await client.get(name)
    except failures() as exc:
        report_outage(operation, exc)
        client, cached = None, None
    if cached is not None:
        if cached == b"1":
            near.put(name, True, epoch, len(name))
        return bool(cached == b"1")
    answer = await load()
    if answer:
        near.put(name, True, epoch, len(name))
    if client is not None:
        try:
            await client.set(name, b"1" if answer else b"0", ex=seconds, nx=True)
        except failures() as exc:
            report_outage(operation, exc)
    return answer


async def invalidate(
    names: Iterable[str] = (),
    *,
    prefixes: Iterable[str] = (),
    marker: bytes = _TOMBSTONE,
    seconds: int = _TOMBSTONE_SECONDS,
    operation: str = "cache",
) -> None:
    """Overwrite ``names`` in Redis with ``marker`` for ``seconds`` (a tombstone unless the
    caller's keys have a marker of their own) and drop every process's copies of them, and
    of every in-memory value whose name starts with one of ``prefixes``. An outage is
    reported under ``operation`` and let pass: what Redis still holds expires with its TTL.

    Returns once Redis has the change (read-your-writes on every replica). Calls made while
    another is being written join the next write: under load, one pipeline and one message
    for many writes, so neither this process nor any listener pays a round trip for each."""
    names, prefixes = sorted(set(names)), sorted(set(prefixes))
    if not names and not prefixes:
        return
    near.drop(names, prefixes)
    await _batches.join((marker, seconds, operation), names, prefixes)
    near.drop(names, prefixes)


# How long a batch of invalidations waits for more callers while writes come together.
_LINGER_SECONDS = 0.002


@dataclass
class _Batch:
    """The names and prefixes that one Redis write will invalidate, and the future its joiners wait on."""

    done: asyncio.Future[None]
    names: set[str] = field(default_factory=set)
    prefixes: set[str] = field(default_factory=set)
    calls: int = 0


class _Batches:
    """Invalidations waiting for the next Redis write, by (marker, seconds, operation); one
    writer task per kind drains them while there are any (as ``outbox``'s marks are).

    A batch that follows one of several callers first waits ``_LINGER_SECONDS`` for more,
    as PostgreSQL's ``commit_delay`` does when it has ``commit_siblings``: under concurrent
    writes each Redis write, and each replica's hearing of its message, then carries more
    of them. A lone writer, whose batches hold only its own call, never waits."""

    def __init__(self) -> None:
        self.waiting: dict[tuple[bytes, int, str], _Batch] = {}
        self.writers: dict[tuple[bytes, int, str], asyncio.Task[None]] = {}
        self.crowded: set[tuple[bytes, int, str]] = set()

    async def join(self, kind: tuple[bytes, int, str], names: list[str], prefixes: list[str]) -> None:
        loop = asyncio.get_running_loop()
        batch = self.waiting.get(kind)
        if batch is None or batch.done.get_loop() is not loop:  # a new loop: tests, a CLI run after another
            batch = self.waiting[kind] = _Batch(loop.create_future())
        batch.names.update(names)
        batch.prefixes.update(prefixes)
        batch.calls += 1
        writer = self.writers.get(kind)
        if writer is None or writer.done() or writer.get_loop() is not loop:
            # A context of its own: not the log fields of the request that started it.
            self.writers[kind] = loop.create_task(self._write(kind), context=contextvars.Context())
        await asyncio.shield(batch.done)

    async def _write(self, kind: tuple[bytes, int, str]) -> None:
        marker, seconds, operation = kind
        while kind in self.waiting:
            batch = self.waiting[kind]
            try:
                if kind in self.crowded:
                    await asyncio.sleep(_LINGER_SECONDS)
                batch = self.waiting.pop(kind, batch)  # the same batch, with whoever joined meanwhile
                self.crowded.discard(kind)
                if batch.calls > 1:
                    self.crowded.add(kind)
                # A tombstone of this write's own (``store_view`` replaces only the one it found).
                value = marker + uuid.uuid4().hex.encode() if marker == _TOMBSTONE else marker
                client = await get_redis()
                async with client.pipeline(transaction=False) as pipe:
                    for name in sorted(batch.names):
                        pipe.set(name, value, ex=seconds)
                    announce(pipe, sorted(batch.names), sorted(batch.prefixes))
                    await pipe.execute()
            except failures() as exc:
                report_outage(operation, exc, batch.calls)  # each caller's change was missed
            except BaseException as exc:  # cancelled (shutdown) or a bug: never leave a write hanging
                unwritten = [batch.done]
                if (later := self.waiting.pop(kind, None)) is not None:
                    unwritten.append(later.done)
                for waiting in (w for w in unwritten if not w.done()):
                    if isinstance(exc, asyncio.CancelledError):
                        waiting.cancel()
                    else:
                        waiting.set_exception(exc)
                raise
            if not batch.done.done():
                batch.done.set_result(None)


_batches = _Batches()
