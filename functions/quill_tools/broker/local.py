"""A Knative-like broker on PostgreSQL, for ``quill dev`` and the tests.

``ingest`` stores an accepted event and one delivery per matching Trigger in one
transaction, so an event acknowledged with 202 survives a restart. The dispatcher
leases due deliveries (``SKIP LOCKED``), sends each in binary mode over real HTTP with
the Trigger's timeout, and then:

- 2xx: delivered; a CloudEvent in the reply is ingested as a new event;
- network error, 5xx, 404, 408, 409 or 429: retried after the backoff, until the
  retries are spent;
- any other status, or retries spent: sent to the dead-letter sink with
  ``knativeerrordest``, ``knativeerrorcode`` and ``knativeerrordata`` (base64);
- a dead-letter sink that keeps failing: the delivery stays ``dead`` in
  ``broker_deliveries``, where ``quill events tail`` shows it.

A dispatcher given ``yields_to`` (``quill dev``'s worker: whether the server is serving
requests) holds its deliveries while that says so, for ``longest_yield`` seconds at
most, then delivers the whole backlog: on one machine, deliveries during a burst of
writes took ~40% of the writes' rate even from a niced process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import psycopg
from cloudevents.conversion import to_binary, to_dict
from cloudevents.http import CloudEvent, from_dict, from_http
from starlette.types import ASGIApp

from quill.db import autocommit, connection
from quill.errors import QuillError, UnavailableError
from quill.events import Envelope, SendFailed, remember_missing_sniffio
from quill.http import status_of
from quill.observability import get_logger
from quill.settings import get_settings
from quill.sink import Reply, Sink, SinkError, is_plain_http
from quill_tools.broker import inprocess
from quill_tools.broker.config import BrokerConfig, Delivery, TriggerConfig
from quill_tools.broker.filters import matches

__all__ = ["CHANNEL", "RETRYABLE", "LocalBroker"]

RETRYABLE = frozenset({404, 408, 409, 429})
_LEASE_SECONDS = 30
_BATCH = 32
# How often a dispatcher that yields asks again whether the requests have stopped.
_YIELD_CHECK_SECONDS = 0.002

_log = get_logger("quill_tools.broker")

# An ingest that leaves deliveries notifies this channel, so a dispatcher in another
# process (``quill dev``'s worker) wakes at once rather than on its next poll.
CHANNEL = "quill_broker"
# Events and one delivery per chosen Trigger of each, in one statement (its own
# transaction), which also wakes the dispatchers listening on ``CHANNEL`` as it commits
# when there is something to deliver (a wake costs a dispatcher a lease). The batch is one
# JSON document, ``[{"event": {...}, "deliveries": [[trigger, subscriber], ...]}, ...]``:
# as a jsonb[] parameter, escaping each event into an array literal cost more than the
# statement.
_STORE = """
WITH given AS (
    SELECT nextval(pg_get_serial_sequence('broker_events', 'id')) AS id, given.n, given.item
    FROM jsonb_array_elements(%(batch)s::jsonb) WITH ORDINALITY AS given(item, n)
), stored AS (
    INSERT INTO broker_events (id, broker, event) OVERRIDING SYSTEM VALUE
    SELECT id, %(broker)s, item -> 'event' FROM given ORDER BY n
), due AS (
    INSERT INTO broker_deliveries (event_pk, trigger, subscriber)
    SELECT given.id, chosen.pair ->> 0, chosen.pair ->> 1
    FROM given, jsonb_array_elements(given.item -> 'deliveries') WITH ORDINALITY AS chosen(pair, k)
    ORDER BY given.n, chosen.k
)
SELECT given.id, CASE WHEN %(wake)s THEN pg_notify(%(channel)s, %(broker)s) END AS woken
FROM given ORDER BY given.n
"""
_LEASE = """
UPDATE broker_deliveries d SET next_attempt_at = clock_timestamp() + %(lease)s
FROM broker_events e
WHERE d.event_pk = e.id AND d.id IN (
    SELECT id FROM broker_deliveries
    WHERE state = 'pending' AND next_attempt_at <= clock_timestamp()
    ORDER BY next_attempt_at, id LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
RETURNING d.id, d.trigger, d.subscriber, d.attempts, d.dead_lettering, d.error_code, d.error_data, e.event
"""
_DELIVERED = """
UPDATE broker_deliveries SET state = 'delivered', attempts = attempts + 1, last_status = %s,
    last_error = NULL, updated_at = clock_timestamp()
WHERE id = %s
"""
# Every delivery of a dispatch batch that succeeded, in one statement.
_DELIVERED_EACH = """
UPDATE broker_deliveries d SET state = 'delivered', attempts = d.attempts + 1, last_status = s.status,
    last_error = NULL, updated_at = clock_timestamp()
FROM unnest(%s::bigint[], %s::int[]) AS s(id, status)
WHERE d.id = s.id
"""
_RETRY = """
UPDATE broker_deliveries SET attempts = attempts + 1, last_status = %s, last_error = %s,
    next_attempt_at = clock_timestamp() + %s, updated_at = clock_timestamp()
WHERE id = %s
"""
_TO_DEAD_LETTER = """
UPDATE broker_deliveries SET dead_lettering = true, attempts = 0, error_code = %s, error_data = %s,
    last_status = %s, last_error = %s, next_attempt_at = clock_timestamp(), updated_at = clock_timestamp()
WHERE id = %s
"""
_DEAD = """
UPDATE broker_deliveries SET state = 'dead', attempts = attempts + 1, last_status = %s, last_error = %s,
    updated_at = clock_timestamp()
WHERE id = %s
"""


@dataclass(frozen=True)
class _Unstored:
    item: str  # JSON: {"event": {...}, "deliveries": [[trigger, subscriber], ...]}
    wakes: bool  # it has deliveries
    stored: asyncio.Future[int]


def _fail(batch: list[_Unstored], error: Exception) -> None:
    for unstored in batch:
        if not unstored.stored.done():
            unstored.stored.set_exception(error)


@dataclass(frozen=True)
class _Outcome:
    status: int | None  # None: no HTTP answer (connection refused, timeout)
    error: str | None
    body: bytes = b""
    reply: CloudEvent | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status >= 500 or self.status in RETRYABLE


class LocalBroker:
    def __init__(
        self,
        config: BrokerConfig,
        url_of: Callable[[str], str],
        in_process: Callable[[str], ASGIApp | None] = lambda url: None,
        *,
        yields_to: Callable[[], bool] | None = None,
        longest_yield: float = 10.0,
    ) -> None:
        """``url_of`` maps a Knative Service name to the URL that serves it locally;
        ``in_process``, a URL to the app that serves it in this very process, if one does
        (a delivery to it is then a call, not a TCP round trip); ``yields_to``, whether
        requests are being served that deliveries should wait for (see the module's doc)."""
        self.config = config
        self.url_of = url_of
        self.in_process = in_process
        self.yields_to = yields_to
        self.longest_yield = longest_yield
        self._yielding_since: float | None = None
        self.triggers: Mapping[str, TriggerConfig] = {trigger.name: trigger for trigger in config.triggers}
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._sinks: dict[str, Sink] = {}
        self._unstored: list[_Unstored] = []
        self._storing: asyncio.Task[None] | None = None

    @property
    def path(self) -> str:
        return f"/_broker/{self.config.namespace}/{self.config.name}"

    async def ingest(self, event: CloudEvent) -> int:
        """Accept an event: store it and its deliveries, then wake the dispatcher.

        The events that arrive while one store is under way are stored together by the
        next (group commit): one statement and one connection for many, each caller
        answered once its own event is stored, or with the store's error."""
        attributes = event.get_attributes()
        chosen = [trigger for trigger in self.config.triggers if matches(trigger, attributes)]
        loop = asyncio.get_running_loop()
        stored: asyncio.Future[int] = loop.create_future()
        deliveries = [(trigger.name, self.url_of(trigger.subscriber)) for trigger in chosen]
        # Serialised here, so that an event that cannot be fails its own caller only.
        item = json.dumps({"event": to_dict(event), "deliveries": deliveries})
        self._unstored.append(_Unstored(item, bool(deliveries), stored))
        if self._storing is None or self._storing.done() or self._storing.get_loop() is not loop:
            self._storing = loop.create_task(self._store())
        row_id = await stored
        # At debug, as each delivery is: under load, a line per event cost quill dev a fifth
        # of its writes (a flushed write each); ``quill events tail`` shows the deliveries.
        _log.debug("broker_accepted", event_id=attributes["id"], event_type=attributes["type"], triggers=len(chosen))
        return row_id

    async def _store(self) -> None:
        while self._unstored:
            batch, self._unstored = self._unstored, []
            try:
                await self._write(batch)
            except Exception as error:
                if len(batch) == 1 or isinstance(error, UnavailableError):
                    _fail(batch, error)
                    continue
                # One event PostgreSQL refuses (a NUL in its JSON, say) must not fail the
                # others it was stored with: each alone, then.
                for unstored in batch:
                    try:
                        await self._write([unstored])
                    except Exception as alone:
                        _fail([unstored], alone)

    async def _write(self, batch: list[_Unstored]) -> None:
        wake = any(unstored.wakes for unstored in batch)
        params = {
            "batch": "[" + ",".join(unstored.item for unstored in batch) + "]",
            "broker": self.config.name,
            "wake": wake,
            "channel": CHANNEL,
        }
        async with autocommit() as conn:
            rows = await (await conn.execute(_STORE, params)).fetchall()
        if wake:
            self._wake.set()
        for unstored, row in zip(batch, rows, strict=True):
            if not unstored.stored.done():  # its caller gave up waiting: it is stored all the same
                unstored.stored.set_result(int(row["id"]))

    async def take(self, envelope: Envelope) -> None:
        """One of this process's own events (``events.serve_in_process``), ingested as the
        HTTP ingress would take it: ``SendFailed`` when it could not be, as the ingress
        would answer 503, and the outbox keeps the event."""
        try:
            await self.ingest(envelope.to_cloudevent())
        except QuillError as error:  # PostgreSQL away
            raise SendFailed(type(error).__name__, status_of(error)) from error

    def wake(self) -> None:
        """Look for due deliveries now, not at the next poll."""
        self._wake.set()

    async def listen(self, stop: asyncio.Event) -> None:
        """Wake the dispatcher on every ingest, whichever process made it, until ``stop``
        is set: a connection of its own LISTENs on ``CHANNEL``. When PostgreSQL is away it
        reconnects every second; meanwhile the dispatcher's poll still finds the work."""
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(get_settings().database_url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.wake()  # what was ingested while nobody listened
                    while not stop.is_set():
                        async for _ in conn.notifies(timeout=1.0):
                            self.wake()
            except psycopg.OperationalError:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; at most one batch in flight, retries on schedule."""
        remember_missing_sniffio()  # ~a third of quill dev's CPU under write load went to that import
        self._client = httpx.AsyncClient()
        try:
            busy = 0
            while not stop.is_set():
                # Wait for a lull only when work is likely due (an ingest woke it, or the last
                # lease found some): a bare poll does not spin while the API serves reads.
                if busy or self._wake.is_set():
                    await self._yield(stop)
                    if stop.is_set():  # stopped while yielding: lease nothing more
                        break
                try:
                    busy = await self.dispatch_once()
                except Exception:
                    _log.exception("broker_dispatch_failed")
                    busy = 0
                else:
                    if busy == 0:
                        self._yielding_since = None  # the backlog is delivered: the next one may wait again
                if busy == 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=0.2)
        finally:
            await self._client.aclose()
            self._client = None
            for sink in self._sinks.values():
                sink.close()
            self._sinks.clear()

    async def _yield(self, stop: asyncio.Event) -> None:
        """Wait while ``yields_to`` says requests are being served, unless the deliveries
        have already waited ``longest_yield`` seconds since the backlog was last empty:
        then they go, requests or not, until it is empty again."""
        if self.yields_to is None:
            return
        while not stop.is_set() and self.yields_to():
            now = time.monotonic()
            if self._yielding_since is None:
                self._yielding_since = now
            elif now - self._yielding_since >= self.longest_yield:
                return
            await asyncio.sleep(_YIELD_CHECK_SECONDS)

    async def dispatch_once(self) -> int:
        """Lease the due deliveries and send them concurrently, then mark the ones that
        succeeded in one statement; return how many there were."""
        async with autocommit() as conn:  # each statement here is a transaction of its own
            rows = await (
                await conn.execute(_LEASE, {"lease": timedelta(seconds=_LEASE_SECONDS), "batch": _BATCH})
            ).fetchall()
        statuses = await asyncio.gather(*(self._deliver_safely(row) for row in rows))
        delivered = [(row["id"], status) for row, status in zip(rows, statuses, strict=True) if status is not None]
        if delivered:
            async with autocommit() as conn:
                await conn.execute(_DELIVERED_EACH, ([id for id, _ in delivered], [status for _, status in delivered]))
        return len(rows)

    async def _deliver_safely(self, row: dict[str, Any]) -> int | None:
        """The status of a delivery the subscriber took, left for ``dispatch_once`` to mark.
        One delivery's failure (PostgreSQL away) leaves it leased: it is retried when the
        lease ends; so does a mark that fails."""
        try:
            return await self._deliver(row)
        except Exception:
            _log.exception("broker_delivery_failed", trigger=row["trigger"])
            return None

    def _delivery_of(self, trigger_name: str) -> Delivery:
        trigger = self.triggers.get(trigger_name)
        return trigger.delivery if trigger and trigger.delivery else self.config.delivery

    def _poster(self, url: str) -> Callable[[list[tuple[str, str]], bytes], Awaitable[Reply]] | None:
        """How a delivery to ``url`` is POSTed: a call into this process's own app, or a
        kept-alive connection for plain HTTP (every local subscriber), not httpx's pool;
        None: through httpx."""
        app = self.in_process(url)
        if app is not None:
            return functools.partial(inprocess.post, app, url)
        if is_plain_http(url):
            return (self._sinks.get(url) or self._sinks.setdefault(url, Sink(url))).post
        return None

    async def _send(self, url: str, event: CloudEvent, seconds: float) -> _Outcome:
        assert self._client is not None, "run() starts the HTTP client"
        headers, body = to_binary(event)
        post = self._poster(url)
        if post is not None:
            try:
                async with asyncio.timeout(seconds):
                    answer = await post(list(headers.items()), body)
            except TimeoutError:
                return _Outcome(None, "ReadTimeout: the subscriber did not answer in time")
            except (OSError, SinkError) as exc:
                return _Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
            status, answered, content = answer.status, answer.headers, answer.body
        else:
            try:
                response = await self._client.post(url, headers=headers, content=body, timeout=seconds)
            except httpx.HTTPError as exc:
                return _Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
            status, answered, content = response.status_code, dict(response.headers), response.content
        reply = None
        if 200 <= status < 300 and content and "ce-id" in answered:
            try:
                reply = from_http(answered, content)
            except Exception:  # a malformed reply is dropped, as Knative drops it
                _log.warning("broker_reply_dropped", url=url)
        error = None if 200 <= status < 300 else f"HTTP {status}"
        return _Outcome(status, error, content[:1024], reply)

    async def _deliver(self, row: dict[str, Any]) -> int | None:
        """Send one delivery; settle it unless it succeeded (then return its status)."""
        event = from_dict(row["event"])
        delivery = self._delivery_of(row["trigger"])
        if row["dead_lettering"]:
            await self._deliver_dead_letter(row, event, delivery)
            return None
        outcome = await self._send(row["subscriber"], event, delivery.timeout)
        if outcome.reply is not None:
            # Before the delivery is marked done: if this fails, the delivery is retried
            # (and the reply sent again), as Knative does, rather than the reply lost.
            await self.ingest(outcome.reply)
        (_log.debug if outcome.ok else _log.warning)(
            "broker_delivery",
            trigger=row["trigger"],
            event_id=event["id"],
            event_type=event["type"],
            status=outcome.status,
            attempt=row["attempts"] + 1,
        )
        if outcome.ok:
            return outcome.status
        async with connection() as conn:
            if outcome.retryable and row["attempts"] < delivery.retry:
                wait = timedelta(seconds=delivery.backoff(row["attempts"]))
                await conn.execute(_RETRY, (outcome.status, outcome.error, wait, row["id"]))
            else:
                data = base64.b64encode(outcome.body).decode()
                status = outcome.status
                await conn.execute(_TO_DEAD_LETTER, (status, data, status, outcome.error, row["id"]))
                self._wake.set()
        return None

    async def _deliver_dead_letter(self, row: dict[str, Any], event: CloudEvent, delivery: Delivery) -> None:
        service = delivery.dead_letter_service
        if service is None:
            async with connection() as conn:
                await conn.execute(_DEAD, (row["error_code"], "no dead-letter sink configured", row["id"]))
            _log.error("broker_event_dead", trigger=row["trigger"], event_id=event["id"])
            return
        event["knativeerrordest"] = row["subscriber"]
        event["knativeerrorcode"] = str(row["error_code"] if row["error_code"] is not None else "")
        event["knativeerrordata"] = row["error_data"] or ""
        outcome = await self._send(self.url_of(service), event, delivery.timeout)
        async with connection() as conn:
            if outcome.ok:
                await conn.execute(_DELIVERED, (outcome.status, row["id"]))
            elif row["attempts"] < delivery.retry:
                wait = timedelta(seconds=delivery.backoff(row["attempts"]))
                await conn.execute(_RETRY, (outcome.status, outcome.error, wait, row["id"]))
            else:
                await conn.execute(_DEAD, (outcome.status, outcome.error, row["id"]))
                _log.error("broker_event_dead", trigger=row["trigger"], event_id=event["id"])
        _log.info("broker_dead_lettered", trigger=row["trigger"], event_id=event["id"], status=outcome.status)
