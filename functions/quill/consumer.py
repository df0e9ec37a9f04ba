"""What turns event handlers into an event function: CloudEvents in, 202 out, once.

An event function is an http function like the others. It parses the CloudEvent
(binary or structured mode), checks its data against the type's JSON Schema in the
event catalog, skips one it has already handled (by ``source`` + ``id``, recorded in
the same transaction as the handler's effect), and answers:

- 202 with an empty body when the event is handled (or was already);
- 400 for a request that is not a CloudEvent, or a type this function does not take;
  422 for data that does not match the type's schema, or that the handler finds can
  never be accepted (``EventRejected``, or any permanent ``QuillError``): the broker
  does not retry these and parks them in the dead-letter sink;
- 503 when a dependency is away, 500 for anything else the handler raises: the
  broker retries both. An event that passed its schema is a good event, so a
  ``KeyError`` in a handler is a bug to fix, not a reason to park the event: the
  retries (and a replay after the fix) still deliver it.

``is_permanent`` reads the ``QuillError`` tree for events: the event is at fault
(invalid, not found, forbidden, ...) or something in its way may pass (a conflict, a
limit, a dependency away).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from cloudevents.exceptions import GenericException as CloudEventError
from cloudevents.http import CloudEvent, from_http
from psycopg import sql
from starlette.requests import Request
from starlette.responses import Response

from quill.catalog import find_data_errors
from quill.domain.outbox import Transaction, transaction
from quill.errors import (
    ConflictError,
    EventRejected,
    MalformedError,
    QuillError,
    RateLimitedError,
    UnavailableError,
)
from quill.function import Call, Endpoint
from quill.http import error_body, json, read_body
from quill.observability import EVENTS_CONSUMED, bind_log_context, get_logger

__all__ = ["Claim", "ClaimingHandler", "Consumer", "EventHandler", "EventRejected", "is_permanent", "parse_event"]


@dataclass(frozen=True)
class Claim:
    """A consumer's de-duplication claim on one event, for a handler that writes with a
    single statement: ``cte`` goes first in that statement's WITH list (it is named
    ``claim``), every write of the statement is made conditional on ``EXISTS (SELECT FROM
    claim)``, and the statement answers whether the claim was taken. The claim and the
    effect then commit together in one round trip, in autocommit, where a transaction
    around them costs four (BEGIN, the claim, the write, COMMIT)."""

    consumer: str
    source: str
    event_id: str

    cte: ClassVar[str] = """claim AS (
    INSERT INTO processed_events (consumer, source, event_id)
    VALUES (%(claim_consumer)s, %(claim_source)s, %(claim_event_id)s)
    ON CONFLICT DO NOTHING RETURNING event_id
)"""

    def params(self) -> dict[str, Any]:
        return {"claim_consumer": self.consumer, "claim_source": self.source, "claim_event_id": self.event_id}


EventHandler = Callable[[Transaction, CloudEvent], Awaitable[None]]
# Writes with one statement that embeds the claim; answers whether the claim was taken
# (False: a duplicate, and the statement changed nothing).
ClaimingHandler = Callable[[Transaction, CloudEvent, Claim], Awaitable[bool]]

_log = get_logger("quill.consumer")

_CLAIM = sql.SQL("WITH {claim} SELECT event_id FROM claim").format(claim=sql.SQL(Claim.cte)).as_string(None)


# What may pass by the next delivery; every other QuillError says the event is wrong.
_RETRYABLE: tuple[type[QuillError], ...] = (ConflictError, RateLimitedError, UnavailableError)


def is_permanent(error: QuillError) -> bool:
    """Whether delivering the event again could never help: then it is answered 4xx and
    parked. (Anything that is not a ``QuillError`` is a bug: retried, to be replayed.)"""
    return not isinstance(error, _RETRYABLE)


async def parse_event(request: Request) -> CloudEvent:
    """A CloudEvent in binary or structured mode; 413 when too large, 400 when not an event."""
    body = await read_body(request)
    try:
        event = from_http(dict(request.headers), body)
    except (CloudEventError, ValueError, TypeError) as exc:
        raise MalformedError({"event": [f"is not a valid CloudEvent: {type(exc).__name__}"]}) from None
    return event


class Consumer:
    """One event function: a handler per event type, de-duplicated under ``name``.

    ``validate=False`` hands the handler whatever data came, as the dead-letter sink,
    which must never refuse an event, needs. ``writes=False`` is for handlers that change
    nothing in PostgreSQL (they record what is stale, for the read side to drop): the
    de-duplication claim is then the only write, one statement in autocommit, instead of
    a transaction (BEGIN and COMMIT) around it. ``claiming`` handlers write with a single
    statement that takes the claim itself (``Claim``): one round trip per event."""

    def __init__(
        self,
        name: str,
        handlers: Mapping[str, EventHandler] | None = None,
        *,
        claiming: Mapping[str, ClaimingHandler] | None = None,
        deduplicate: bool = True,
        validate: bool = True,
        writes: bool = True,
    ) -> None:
        if claiming and not deduplicate:
            raise ValueError("a claiming handler de-duplicates by its claim")
        self.name = name
        self.handlers = handlers if handlers is not None else {}
        self.claiming = claiming if claiming is not None else {}
        self.deduplicate = deduplicate
        self.validate = validate
        self.writes = writes

    def endpoints(self) -> list[Endpoint]:
        # Knative delivers to the service root; any path is accepted, as functions-framework does.
        return [
            Endpoint("POST", "/", self.receive, auth="none"),
            Endpoint("POST", "/{path:path}", self.receive, auth="none"),
        ]

    async def receive(self, call: Call) -> Response:
        event = await parse_event(call.request)
        attributes: Mapping[str, Any] = event.get_attributes()
        bind_log_context(
            event_id=attributes["id"],
            event_type=attributes["type"],
            event_source=attributes["source"],
            subject=attributes.get("subject"),
        )
        handler = self.handlers.get(attributes["type"])
        claiming = self.claiming.get(attributes["type"])
        if handler is None and claiming is None:
            return self._done(event, "unexpected_type", 400, {"type": [f"{self.name} does not take this type"]})
        invalid = find_data_errors(attributes["type"], event.data) if self.validate else {}
        if invalid:
            return self._done(event, "invalid", 422, invalid, reason="data does not match the type's schema")
        try:
            if claiming is not None:
                async with transaction(self.name, one_statement=True) as tx:
                    if not await claiming(tx, event, self._claim(attributes)):
                        return self._done(event, "duplicate", 202)
                return self._done(event, "processed", 202)
            assert handler is not None
            async with transaction(self.name, one_statement=not self.writes) as tx:
                if self.writes and await self._seen(tx, attributes):
                    return self._done(event, "duplicate", 202)
                await handler(tx, event)
                # A handler that writes nothing claims the event after it ran: the claim
                # commits at once, and a handler that failed must leave it unclaimed.
                if not self.writes and await self._seen(tx, attributes):
                    tx.changes.clear()  # a duplicate drops nothing again
                    return self._done(event, "duplicate", 202)
        except Exception as error:
            return self._failed(event, error)
        return self._done(event, "processed", 202)

    def _failed(self, event: CloudEvent, error: Exception) -> Response:
        if isinstance(error, QuillError) and is_permanent(error):
            reason = error.reason if isinstance(error, EventRejected) else type(error).__name__
            return self._done(event, "rejected", 422, error.errors, reason=reason)
        if isinstance(error, UnavailableError):
            return self._done(event, "retry", 503, {"database": ["is unavailable"]})
        # a dependency blip or a bug, never the event's fault: ask for a retry
        _log.exception("event_failed", error=type(error).__name__)
        return self._done(event, "retry", 500, {"server": ["internal error"]})

    async def _seen(self, tx: Transaction, attributes: Mapping[str, Any]) -> bool:
        """Whether this consumer already took the event (claiming it if not); never, for
        one that does not de-duplicate."""
        if not self.deduplicate:
            return False
        cursor = await tx.conn.execute(_CLAIM, self._claim(attributes).params())
        return await cursor.fetchone() is None

    def _claim(self, attributes: Mapping[str, Any]) -> Claim:
        return Claim(self.name, attributes["source"], attributes["id"])

    def _done(
        self,
        event: CloudEvent,
        outcome: str,
        status_code: int,
        errors: dict[str, list[str]] | None = None,
        reason: str | None = None,
    ) -> Response:
        EVENTS_CONSUMED.labels(self.name, event["type"], outcome).inc()
        # The request's one line (``request_finished``) carries the outcome beside the
        # event's fields; an event refused or failed has a warning line of its own.
        bind_log_context(outcome=outcome)
        if status_code >= 400:
            _log.warning("event_handled", outcome=outcome, reason=reason)
        if errors is None:
            return Response(status_code=status_code)  # empty: the broker treats any body as a reply
        return json(error_body(errors), status_code)
