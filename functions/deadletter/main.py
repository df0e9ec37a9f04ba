"""The ``deadletter`` event function: the broker's dead-letter sink.

Every event the broker gave up on is parked in PostgreSQL with the error the broker
attached (``knativeerrorcode``, ``knativeerrordata``, ``knativeerrordest``), where
``quill events dead-letters`` lists it and ``quill events replay`` sends it back.
"""

from __future__ import annotations

from collections.abc import Mapping

from cloudevents.http import CloudEvent
from functions_framework.aio import http
from starlette.requests import Request
from starlette.responses import Response

from quill.consumer import Consumer, EventHandler
from quill.domain import deadletters
from quill.domain.outbox import Transaction
from quill.function import Function


async def park(tx: Transaction, event: CloudEvent) -> None:
    await deadletters.park(tx.conn, event)


class _EveryType(Mapping[str, EventHandler]):
    """Whatever the type, it is parked: the sink must never refuse an event."""

    def __getitem__(self, key: str) -> EventHandler:
        return park

    def __iter__(self):  # type: ignore[no-untyped-def]  # never iterated
        return iter(())

    def __len__(self) -> int:
        return 0


CONSUMER = Consumer("deadletter", _EveryType(), deduplicate=False, validate=False)
FUNCTION = Function("deadletter", CONSUMER.endpoints())


@http
async def deadletter(request: Request) -> Response:
    return await FUNCTION(request)
