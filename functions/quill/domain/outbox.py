"""The transactional outbox. Owns ``outbox``.

A write opens ``transaction()``, changes its tables and ``emit``s events: both commit
together or not at all. Right after commit the events are sent to ``K_SINK``; if the
broker is away the request still succeeds and the events wait, in order, for
``relay()`` (the ``outbox`` function, woken every minute). A sender first leases rows
(``FOR UPDATE SKIP LOCKED``, then ``claimed_until``) and sends them holding no
database connection, so any number of senders run at once without sending an event
twice; a send whose acknowledgement is lost, or a sender that dies holding a lease,
may repeat an event, and consumers de-duplicate by ``source`` + ``id``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Jsonb

from quill import events
from quill.db import Connection, connection
from quill.domain import views
from quill.observability import EVENTS_PUBLISHED, OUTBOX_PENDING, current_traceparent, get_logger
from quill.settings import get_settings

__all__ = ["Transaction", "forget_processed", "pending", "publish", "relay", "transaction"]

# Longer than any broker retry schedule: a redelivery inside it is still recognised.
DEDUPLICATION_DAYS = 7
# An event the broker refused this many times stays in the outbox, counted by
# quill_outbox_pending (an alert), for a person to look at: parked, never dropped.
MAX_ATTEMPTS = 20

_log = get_logger("quill.outbox")

_INSERT = """
INSERT INTO outbox (event_id, type, source, subject, data, traceparent, created_at)
VALUES (%(id)s, %(type)s, %(source)s, %(subject)s, %(data)s, %(traceparent)s, %(time)s)
RETURNING id
"""
_CLAIM = """
UPDATE outbox SET claimed_until = clock_timestamp() + make_interval(secs => %(lease)s), claim_token = %(token)s
WHERE id IN (
    SELECT id FROM outbox
    WHERE published_at IS NULL
      AND attempts < %(max_attempts)s
      AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
      AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, event_id, type, source, subject, data, traceparent, created_at
"""
_SENT = """
UPDATE outbox SET published_at = clock_timestamp(), attempts = attempts + 1, claimed_until = NULL
WHERE id = ANY(%s) AND claim_token = %s
"""
_FAILED = """
UPDATE outbox SET attempts = attempts + 1, last_error = %s, claimed_until = NULL
WHERE id = ANY(%s) AND claim_token = %s AND published_at IS NULL
"""
_RELEASE = "UPDATE outbox SET claimed_until = NULL WHERE id = ANY(%s) AND claim_token = %s AND published_at IS NULL"
_FORGET = "DELETE FROM processed_events WHERE processed_at < clock_timestamp() - make_interval(days => %s)"


@dataclass
class Transaction:
    """A database transaction that can also emit events."""

    conn: Connection
    source: str
    emitted: list[int] = field(default_factory=list)
    types: set[str] = field(default_factory=set)
    # Cached views this write changes, dropped (everywhere) right after commit.
    stale: set[str] = field(default_factory=set)
    # Set by a write that changes what list pages show without an event of its own
    # (the search index); an event in ``views.LIST_CHANGES`` does the same.
    stale_lists: bool = False

    async def emit(self, type: str, subject: str | int, data: dict[str, Any]) -> None:
        envelope = events.Envelope.new(type, self.source, subject, data, current_traceparent())
        cursor = await self.conn.execute(
            _INSERT,
            {
                "id": envelope.id,
                "type": envelope.type,
                "source": envelope.source,
                "subject": envelope.subject,
                "data": Jsonb(envelope.data),
                "traceparent": envelope.traceparent,
                "time": envelope.time,
            },
        )
        row = await cursor.fetchone()
        assert row is not None
        self.emitted.append(int(row["id"]))
        self.types.add(type)


@asynccontextmanager
async def transaction(emitter: str) -> AsyncIterator[Transaction]:
    """Commit the block's changes and events together, drop the views and list pages they
    make stale (one Redis round trip), then try to send the events at once."""
    # An explicit transaction block: a nested conn.transaction() (the slug retries) is then
    # a savepoint. Without it, the first nested block would BEGIN and COMMIT on its own.
    async with connection() as conn, conn.transaction():
        work = Transaction(conn, events.source_of(emitter))
        yield work
    lists = work.stale_lists or bool(work.types & views.LIST_CHANGES)
    if work.stale or lists:
        await views.drop(work.stale, lists=lists)
    if work.emitted:
        await publish(work.emitted)


def _envelope(row: dict[str, Any]) -> events.Envelope:
    return events.Envelope(
        row["event_id"], row["type"], row["source"], row["subject"], row["data"], row["created_at"], row["traceparent"]
    )


async def _claim(ids: list[int] | None, limit: int) -> tuple[str, list[dict[str, Any]]]:
    """Lease up to ``limit`` pending rows (oldest first) in a short transaction of its own.

    The lease covers sending every row at the slowest allowed pace, and only this
    claim's token may settle the rows: a sender that overran its lease changes nothing.
    """
    settings = get_settings()
    token = uuid.uuid4().hex
    lease = settings.event_timeout * 2 * limit + 5
    params = {"ids": ids, "limit": limit, "lease": lease, "token": token, "max_attempts": MAX_ATTEMPTS}
    async with connection() as conn:
        rows = await (await conn.execute(_CLAIM, params)).fetchall()
    return token, sorted(rows, key=lambda row: row["id"])


async def _send(token: str, rows: list[dict[str, Any]], sink: str) -> int:
    """Send leased rows in order, holding no connection.

    A refused event (the sink answered 4xx) is recorded and skipped, so it cannot hold
    back the events behind it; an unreachable or failing sink stops the batch.
    """
    sent: list[int] = []
    refused: list[tuple[int, str]] = []
    unsent: list[int] = []
    error = ""
    for position, row in enumerate(rows):
        try:
            await events.send(_envelope(row).to_cloudevent(), sink)
        except events.SendFailed as exc:
            error = str(exc)[:500]
            _log.warning("event_publish_failed", event_type=row["type"], event_id=row["event_id"], error=error[:200])
            if exc.refused:
                refused.append((row["id"], error))
                continue
            unsent = [later["id"] for later in rows[position:]]
            break
        sent.append(row["id"])
    async with connection() as conn:
        if sent:
            await conn.execute(_SENT, (sent, token))
        for row_id, reason in refused:
            await conn.execute(_FAILED, (reason, [row_id], token))
        if unsent:
            await conn.execute(_FAILED, (error, unsent[:1], token))
            await conn.execute(_RELEASE, (unsent[1:], token))
    EVENTS_PUBLISHED.labels("sent").inc(len(sent))
    EVENTS_PUBLISHED.labels("failed").inc(len(refused) + len(unsent))
    return len(sent)


async def publish(ids: list[int]) -> None:
    """Send just-committed events now. Never raises: what fails stays for ``relay``."""
    sink = get_settings().k_sink
    if sink is None:
        return
    try:
        token, rows = await _claim(ids, len(ids))
        if rows:
            await _send(token, rows, sink)
    except Exception:  # the user's write has committed; a failure here must not fail it
        _log.exception("event_publish_deferred", events=len(ids))


async def relay(max_batches: int = 50) -> int:
    """Send pending events oldest first, a batch at a time; return how many were sent."""
    settings = get_settings()
    if settings.k_sink is None:
        return 0
    total = 0
    for _ in range(max_batches):
        token, rows = await _claim(None, settings.outbox_batch)
        if not rows:
            break
        sent = await _send(token, rows, settings.k_sink)
        total += sent
        if sent < len(rows):
            break
    return total


async def pending() -> int:
    """How many events wait for the broker (exported as ``quill_outbox_pending``)."""
    async with connection() as conn:
        row = await (await conn.execute("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")).fetchone()
    count = int(row["n"]) if row else 0
    OUTBOX_PENDING.set(count)
    return count


async def forget_processed() -> int:
    """Drop de-duplication records older than any redelivery could be."""
    async with connection() as conn:
        cursor = await conn.execute(_FORGET, (DEDUPLICATION_DAYS,))
    return cursor.rowcount
