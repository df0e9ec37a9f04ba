"""The ``importer`` event function: article-import requests from outside producers become articles.

Idempotent by the event's ``source`` + ``id``: a request delivered three times creates
one article. Data that can never become an article (unknown author, blank title, bad
timestamps) is refused with 422 and the reason is logged; the broker parks it.
"""

from __future__ import annotations

from cloudevents.http import CloudEvent
from functions_framework.aio import http
from starlette.requests import Request
from starlette.responses import Response

from quill import events
from quill.consumer import Consumer, EventRejected
from quill.domain import article_input, articles, users
from quill.domain.outbox import Transaction
from quill.errors import ValidationError
from quill.function import Function


async def import_article(tx: Transaction, event: CloudEvent) -> None:
    if not isinstance(event.data, dict):
        raise EventRejected("data must be a JSON object")
    try:
        request = article_input.parse_import(event.data)
    except ValidationError as invalid:
        raise EventRejected("invalid article data", invalid.errors) from None
    author_id = await users.id_of(tx.conn, request.author)
    if author_id is None:
        raise EventRejected("author not found", {"author": ["not found"]})
    await articles.insert(tx, author_id, request.article)


CONSUMER = Consumer("importer", {events.ARTICLE_IMPORT_REQUESTED: import_article})
FUNCTION = Function("importer", CONSUMER.endpoints())


@http
async def importer(request: Request) -> Response:
    return await FUNCTION(request)
