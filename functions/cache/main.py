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
from quill.domain.outbox import Transaction
from quill.function import Function


async def drop_views(tx: Transaction, event: CloudEvent) -> None:
    """What another function changed makes the same views stale here: ``reads.stale``
    drops them after this transaction commits."""
    tx.changed(event["type"], event.data)


CONSUMER = Consumer(
    "cache",
    {
        events.USER_UPDATED: drop_views,
        events.ARTICLE_UPDATED: drop_views,
        events.ARTICLE_DELETED: drop_views,
        events.ARTICLE_FAVORITED: drop_views,
        events.ARTICLE_UNFAVORITED: drop_views,
    },
    writes=False,  # it only drops views: the claim is its one statement
)
FUNCTION = Function("cache", CONSUMER.endpoints())


@http
async def cache(request: Request) -> Response:
    return await FUNCTION(request)
