"""The transactional outbox. Owns ``outbox``.

A write opens ``transaction()``, changes its tables and ``emit``s events: both commit
together or not at all. With a ``K_SINK`` each event row is inserted already leased to
the write that made it (``claimed_until`` and ``claim_token`` set in the INSERT), so
right after commit a background task sends those events without a claim round trip,
and their marks are written in batches (one UPDATE for every send that finished while
the previous one ran). The request waits for the send (not for its marks) at most
``EVENT_SEND_WAIT`` seconds; shutdown waits for every such task (``drain``). If the broker is away the
request still succeeds and the events wait, in order, for ``relay()`` (the ``outbox``
function, woken every minute), which takes over any lease that ran out. A relay first
leases rows (``FOR UPDATE SKIP LOCKED``, then ``claimed_until``) and sends them holding
no database connection, so any number of senders run at once without sending an event
twice; a send whose acknowledgement is lost, or a sender that dies holding a lease, may
repeat an event, and consumers de-duplicate by ``source`` + ``id``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from quill import events
from quill.db import Connection, autocommit, connection
from quill.observability import EVENTS_PUBLISHED, OUTBOX_PENDING, current_traceparent, get_logger
from quill.reads import stale as staleness
from quill.settings import get_settings

__all__ = [
    "Transaction",
    "drain",
    "forget_processed",
    "pending",
    "publish",
    "relay",
    "stored_event",
    "transaction",
    "wire_time_sql",
]

# Longer than any broker retry schedule: a redelivery inside it is still recognised.
DEDUPLICATION_DAYS = 7
# An event the broker refused this many times stays in the outbox, counted by
# quill_outbox_pending (an alert), for a person to look at: parked, never dropped.
MAX_ATTEMPTS = 20

_log = get_logger("quill.outbox")

# ``lease`` and ``token`` are NULL without a sink: the row waits for the relay at once.
_INSERT = """
INSERT INTO outbox (event_id, type, source, subject, data, traceparent, created_at, claimed_until, claim_token)
VALUES (%(event_id)s, %(event_type)s, %(event_source)s, %(event_subject)s, %(event_data)s, %(event_traceparent)s,
        %(event_time)s, clock_timestamp() + make_interval(secs => %(event_lease)s::float8), %(event_token)s)
RETURNING id
"""
# The same row, stored by the write's own statement for each row of one of its CTEs.
_INSERT_FROM = """
INSERT INTO outbox (event_id, type, source, subject, data, traceparent, created_at, claimed_until, claim_token)
SELECT %(event_id)s, %(event_type)s, %(event_source)s, {subject}, {data}, %(event_traceparent)s,
       %(event_time)s, clock_timestamp() + make_interval(secs => %(event_lease)s::float8), %(event_token)s
FROM {rows}
RETURNING id AS event_row, subject AS event_subject, data AS event_data
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
# The batched form: each row settled only under the token its own lease was taken with.
_SENT_EACH = """
UPDATE outbox o SET published_at = clock_timestamp(), attempts = o.attempts + 1, claimed_until = NULL
FROM unnest(%s::bigint[], %s::text[]) AS s(id, token)
WHERE o.id = s.id AND o.claim_token = s.token
"""
_FAILED = """
UPDATE outbox SET attempts = attempts + 1, last_error = %s, claimed_until = NULL
WHERE id = ANY(%s) AND claim_token = %s AND published_at IS NULL
"""
_RELEASE = "UPDATE outbox SET claimed_until = NULL WHERE id = ANY(%s) AND claim_token = %s AND published_at IS NULL"
_FORGET = "DELETE FROM processed_events WHERE processed_at < clock_timestamp() - make_interval(days => %s)"


def _lease(timeout: float, position: int) -> float:
    """Long enough to send ``position`` + 1 events in order at the slowest allowed pace,
    and to settle them (a pool wait included)."""
    return timeout * 2 * (position + 1) + 5


@dataclass
class Transaction:
    """A database transaction that can also emit events."""

    conn: Connection
    source: str
    # The lease this write holds on its own event rows (None: no sink, the relay sends them).
    token: str | None = None
    outgoing: list[tuple[int, events.Envelope]] = field(default_factory=list)
    # What this transaction changed, by type (an event's, or ``changed``'s): the views
    # ``reads.stale.STALE`` says they make stale are dropped right after commit.
    changes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def changed(self, type: str, data: dict[str, Any]) -> None:
        """Record a change that has no event of its own here (a reindex, an event heard)."""
        self.changes.append((type, data))

    async def emit(self, type: str, subject: str | int, data: dict[str, Any]) -> None:
        """Store an event with a statement of its own."""
        params = self.event(type)
        params.update(event_subject=str(subject), event_data=Jsonb(data))
        row = await (await self.conn.execute(_INSERT, params)).fetchone()
        assert row is not None
        self._record(params, int(row["id"]), str(subject), data)

    def event(self, type: str) -> dict[str, Any]:
        """The parameters of a ``stored_event`` fragment that stores an event of ``type``;
        hand them, with the statement's row, to ``stored``."""
        lease = _lease(get_settings().event_timeout, len(self.outgoing)) if self.token else None
        return {
            "event_id": str(uuid.uuid4()),
            "event_type": type,
            "event_source": self.source,
            "event_traceparent": current_traceparent(),
            "event_time": datetime.now(UTC),
            "event_lease": lease,
            "event_token": self.token,
        }

    def stored(self, params: dict[str, Any], row: dict[str, Any]) -> None:
        """Record the event a ``stored_event`` fragment stored, if its statement stored one
        (``row`` is the statement's answer; no event when the write changed nothing)."""
        if row.get("event_row") is not None:
            self._record(params, int(row["event_row"]), row["event_subject"], row["event_data"])

    def _record(self, params: dict[str, Any], row_id: int, subject: str, data: dict[str, Any]) -> None:
        envelope = events.Envelope(
            params["event_id"],
            params["event_type"],
            params["event_source"],
            subject,
            data,
            params["event_time"],
            params["event_traceparent"],
        )
        self.outgoing.append((row_id, envelope))
        self.changes.append((envelope.type, data))


def wire_time_sql(column: str) -> sql.Composed:
    """``column``, a timestamp, as ``wire.timestamp`` writes it (milliseconds, ``Z``), for
    event data a statement builds."""
    return sql.SQL("""to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')""").format(sql.SQL(column))


def stored_event(rows: str, subject: sql.Composable, data: sql.Composable) -> sql.Composed:
    """A CTE body that stores one event per row of ``rows`` (a CTE of the same statement),
    its ``subject`` and JSON ``data`` computed from that row, and answers ``event_row``,
    ``event_subject`` and ``event_data``: a write and its event in one statement, so a
    write in ``transaction(one_statement=True)`` costs one round trip. Its parameters
    come from ``Transaction.event``."""
    return sql.SQL(_INSERT_FROM).format(rows=sql.Identifier(rows), subject=subject, data=data)


@asynccontextmanager
async def transaction(emitter: str, *, one_statement: bool = False) -> AsyncIterator[Transaction]:
    """Commit the block's changes and events together, start sending the events, drop the
    views and list pages they make stale (one Redis round trip), then give the send up to
    ``EVENT_SEND_WAIT`` seconds before answering: a slow broker does not hold the request.

    ``one_statement``: the block writes with a single statement (its events stored by
    ``stored_event`` fragments), which is then its own transaction, in autocommit: no
    BEGIN and COMMIT round trips. Reads beside it each see their own snapshot. A block
    that writes with more than one statement must not pass it."""
    settings = get_settings()
    sink = settings.k_sink
    async with autocommit() if one_statement else _in_transaction() as conn:
        work = Transaction(conn, events.source_of(emitter), uuid.uuid4().hex if sink else None)
        yield work
        stale = await staleness.resolve(conn, work.changes)
    delivery = None
    if work.outgoing and work.token is not None and sink is not None:
        delivery = _courier.spawn(_deliver(work.token, work.outgoing, sink))
    if stale:
        await staleness.drop(stale)
    if delivery is not None and settings.event_send_wait > 0:
        await asyncio.wait([delivery], timeout=settings.event_send_wait)


@asynccontextmanager
async def _in_transaction() -> AsyncIterator[Connection]:
    """A pooled connection inside an explicit transaction block: a nested
    ``conn.transaction()`` is then a savepoint, where it would otherwise BEGIN and COMMIT
    on its own."""
    async with connection() as conn, conn.transaction():
        yield conn


class _Courier:
    """The background sends of this process, tracked so that shutdown can wait for them,
    and their marks: the sends that finish while one batch is being written join the
    next, so a busy process writes one UPDATE for many requests instead of one each."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.marks: list[tuple[int, str]] = []
        self.batch: asyncio.Future[None] | None = None
        self.marker: asyncio.Task[None] | None = None

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def mark_sent(self, ids: list[int], token: str) -> None:
        """Record these rows as sent, in the next batch; return once it is written."""
        loop = asyncio.get_running_loop()
        self.marks.extend((row_id, token) for row_id in ids)
        if self.batch is None or self.batch.get_loop() is not loop:  # a CLI run after another
            self.batch = loop.create_future()
        batch = self.batch
        if self.marker is None or self.marker.done() or self.marker.get_loop() is not loop:
            self.marker = self.spawn(self._write_marks())
        await batch

    async def _write_marks(self) -> None:
        while self.marks:
            marks, self.marks = self.marks, []
            batch, self.batch = self.batch, None
            try:
                async with autocommit() as conn:  # one statement: no BEGIN and COMMIT round trips
                    await conn.execute(_SENT_EACH, ([row_id for row_id, _ in marks], [token for _, token in marks]))
            except Exception:  # the events went out; their leases run out and the relay repeats them
                _log.exception("event_marks_deferred", events=len(marks))
            finally:
                if batch is not None and not batch.done():
                    batch.set_result(None)

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds in all for the sends and the marks they spawn."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.tasks:
            left = max(0.0, deadline - loop.time())
            _, pending = await asyncio.wait(set(self.tasks), timeout=left)
            if pending:
                _log.warning("event_sends_abandoned", events=len(pending))  # their rows stay for the relay
                return


_courier = _Courier()


async def drain() -> None:
    """Wait for this process's background sends (shutdown): what they cannot finish in
    time stays in the outbox for the relay."""
    settings = get_settings()
    await _courier.drain(settings.event_timeout * 2 + 5)


async def _deliver(token: str, outgoing: list[tuple[int, events.Envelope]], sink: str) -> None:
    """Send a committed write's events, in order, then leave recording what became of them
    to a task of its own: the write waits for its events to reach the broker, not for the
    bookkeeping after. Never raises: what fails stays for ``relay``."""
    try:
        outcome = await _attempt([(row_id, envelope, envelope.type) for row_id, envelope in outgoing], sink)
    except Exception:  # the user's write has committed; a failure here must not fail it
        _log.exception("event_publish_deferred", events=len(outgoing))
        return
    _courier.spawn(_mark_outcome(token, outcome, len(outgoing)))


async def _mark_outcome(token: str, outcome: _Outcome, count: int) -> None:
    """Mark what a write's send did to its rows: sent rows in the next batch of marks, the
    rest one by one. Never raises: a row left unmarked is sent again by ``relay``."""
    try:
        if outcome.sent and not outcome.refused and not outcome.unsent:
            await _courier.mark_sent(outcome.sent, token)
            EVENTS_PUBLISHED.labels("sent").inc(len(outcome.sent))
        else:
            await _settle(token, outcome)
    except Exception:
        _log.exception("event_publish_deferred", events=count)


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
    async with autocommit() as conn:  # one statement, its own transaction
        rows = await (await conn.execute(_CLAIM, params)).fetchall()
    return token, sorted(rows, key=lambda row: row["id"])


@dataclass
class _Outcome:
    """What one delivery round did with each outbox row: sent, refused by the sink, or left for a retry."""

    sent: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)
    error: str = ""


async def _attempt(rows: list[tuple[int, events.Envelope, str]], sink: str) -> _Outcome:
    """Send ``(id, envelope, type)`` rows in order, holding no connection.

    A refused event (the sink answered 4xx) is recorded and skipped, so it cannot hold
    back the events behind it; an unreachable or failing sink stops the batch.
    """
    outcome = _Outcome()
    for position, (row_id, envelope, type) in enumerate(rows):
        try:
            await events.deliver(envelope, sink)
        except events.SendFailed as exc:
            outcome.error = str(exc)[:500]
            _log.warning("event_publish_failed", event_type=type, event_id=envelope.id, error=outcome.error[:200])
            if exc.refused:
                outcome.refused.append((row_id, outcome.error))
                continue
            outcome.unsent = [later[0] for later in rows[position:]]
            break
        outcome.sent.append(row_id)
    return outcome


async def _settle(token: str, outcome: _Outcome) -> None:
    async with connection() as conn:
        if outcome.sent:
            await conn.execute(_SENT, (outcome.sent, token))
        for row_id, reason in outcome.refused:
            await conn.execute(_FAILED, (reason, [row_id], token))
        if outcome.unsent:
            await conn.execute(_FAILED, (outcome.error, outcome.unsent[:1], token))
            await conn.execute(_RELEASE, (outcome.unsent[1:], token))
    EVENTS_PUBLISHED.labels("sent").inc(len(outcome.sent))
    EVENTS_PUBLISHED.labels("failed").inc(len(outcome.refused) + len(outcome.unsent))


async def _send(token: str, rows: list[dict[str, Any]], sink: str) -> int:
    """Send leased rows in order and settle them; return how many were sent."""
    outcome = await _attempt([(row["id"], _envelope(row), row["type"]) for row in rows], sink)
    await _settle(token, outcome)
    return len(outcome.sent)


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
