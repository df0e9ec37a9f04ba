"""The ``cache`` event function: drops cached views that embed what another function changed.

The writes drop their own views (and every process's list pages) at once; this catches
what they could not (Redis away for a moment) and any view of one function that shows
another's data, such as an author's profile inside cached articles. A Redis outage here
is a 5xx: the broker retries.
"""

from __future__ import annotations

from cloudevents.http import CloudEvent
from functions_framework.aio import http
from starlette.requests import Request
from starlette.responses import Response

from quill import events
from quill.consumer import Consumer
from quill.domain import views
from quill.domain.outbox import Transaction
from quill.function import Function


async def user_updated(tx: Transaction, event: CloudEvent) -> None:
    data = event.data
    stale = await views.author_views(tx.conn, int(data["id"]), data["previousUsername"], data["username"])
    await views.drop(stale, lists=True, strict=True)


async def article_changed(tx: Transaction, event: CloudEvent) -> None:
    data = event.data
    slug = data["slug"] if "slug" in data else data["article"]["slug"]
    await views.drop(views.article_keys(slug, data.get("previousSlug", "")), lists=True, strict=True)


CONSUMER = Consumer(
    "cache",
    {
        events.USER_UPDATED: user_updated,
        events.ARTICLE_UPDATED: article_changed,
        events.ARTICLE_DELETED: article_changed,
        events.ARTICLE_FAVORITED: article_changed,
        events.ARTICLE_UNFAVORITED: article_changed,
    },
)
FUNCTION = Function("cache", CONSUMER.endpoints())


@http
async def cache(request: Request) -> Response:
    return await FUNCTION(request)
