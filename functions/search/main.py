"""The ``search`` event function: keeps the full-text index of articles current."""

from __future__ import annotations

from cloudevents.http import CloudEvent
from functions_framework.aio import http
from starlette.requests import Request
from starlette.responses import Response

from quill import events
from quill.consumer import Claim, Consumer
from quill.domain import search as index
from quill.domain.outbox import Transaction
from quill.function import Function


async def article_changed(tx: Transaction, event: CloudEvent, claim: Claim) -> bool:
    return await index.reindex(tx, int(event.data["id"]), claim)


CONSUMER = Consumer(
    "search",
    claiming={
        events.ARTICLE_CREATED: article_changed,
        events.ARTICLE_UPDATED: article_changed,
        events.ARTICLE_DELETED: article_changed,
    },
)
FUNCTION = Function("search", CONSUMER.endpoints())


@http
async def search(request: Request) -> Response:
    return await FUNCTION(request)
