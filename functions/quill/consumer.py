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
from typing import Any

from cloudevents.exceptions import GenericException as CloudEventError
from cloudevents.http import CloudEvent, from_http
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

__all__ = ["Consumer", "EventHandler", "EventRejected", "is_permanent", "parse_event"]

EventHandler = Callable[[Transaction, CloudEvent], Awaitable[None]]

_log = get_logger("quill.consumer")

_CLAIM = """
INSERT INTO processed_events (consumer, source, event_id) VALUES (%s, %s, %s)
ON CONFLICT DO NOTHING RETURNING event_id
"""


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
    a transaction (BEGIN and COMMIT) around it."""

    def __init__(
        self,
        name: str,
        handlers: Mapping[str, EventHandler],
        *,
        deduplicate: bool = True,
        validate: bool = True,
        writes: bool = True,
    ) -> None:
        self.name = name
        self.handlers = handlers
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
        if handler is None:
            return self._done(event, "unexpected_type", 400, {"type": [f"{self.name} does not take this type"]})
        invalid = find_data_errors(attributes["type"], event.data) if self.validate else {}
        if invalid:
            return self._done(event, "invalid", 422, invalid, reason="data does not match the type's schema")
        try:
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
        cursor = await tx.conn.execute(_CLAIM, (self.name, attributes["source"], attributes["id"]))
        return await cursor.fetchone() is None

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
