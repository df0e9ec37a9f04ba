"""The ``cache`` event function: drops cached views that embed what another function changed.

The writes drop their own views (and every process's list pages) at once; this catches
what they could not (Redis away for a moment) and any view of one function that shows
another's data, such as an author's profile inside cached articles.

When Redis is unreachable the event is still accepted (202), the outage logged
(``redis_unavailable``) and counted (``quill_dependency_errors_total{dependency="redis",
operation="cache"}``), exactly as a write's own invalidation fails open. Retrying cannot
beat the bound that holds anyway: a view lives in Redis for ``CACHE_TTL`` (60 s) and a
process's copy for ``NEAR_CACHE_SECONDS`` (10 s, and none while its listener is cut off),
so a missed invalidation is stale for at most ``CACHE_TTL`` after Redis answers again,
and nothing is served from a Redis that is down. A 5xx instead sent every invalidation
of an outage longer than the broker's retries (about 63 s) to the dead letters.
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
    await views.drop(stale, lists=True)


async def article_changed(tx: Transaction, event: CloudEvent) -> None:
    data = event.data
    slug = data["slug"] if "slug" in data else data["article"]["slug"]
    await views.drop(views.article_keys(slug, data.get("previousSlug", "")), lists=True)


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
