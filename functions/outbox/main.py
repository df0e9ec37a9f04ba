"""The ``outbox`` function: sends events that could not be sent at write time.

A PingSource wakes it every minute (``quill dev`` runs the same relay on a timer). It
sends pending outbox rows oldest first, in batches, safely alongside other replicas,
and forgets de-duplication records older than the broker could ever redeliver.
"""

from __future__ import annotations

from functions_framework.aio import http
from starlette.requests import Request
from starlette.responses import Response

from quill.consumer import parse_event
from quill.domain import outbox as relay
from quill.function import Call, Endpoint, Function
from quill.observability import get_logger

_log = get_logger("quill.outbox")


async def tick(call: Call) -> Response:
    await parse_event(call.request)  # a PingSource event; its content does not matter
    sent = await relay.relay()
    forgotten = await relay.forget_processed()
    waiting = await relay.pending()
    _log.info("outbox_relayed", sent=sent, forgotten=forgotten, pending=waiting)
    return Response(status_code=202)


FUNCTION = Function(
    "outbox",
    [Endpoint("POST", "/", tick, auth="none"), Endpoint("POST", "/{path:path}", tick, auth="none")],
)


@http
async def outbox(request: Request) -> Response:
    return await FUNCTION(request)
