"""CloudEvents in and out: the types Quill speaks, and sending them to the broker.

Every type is named ``io.quill.<entity>.<verb>.v1`` and listed, with its data schema,
in ``eventing/catalog.yaml``; a test keeps this module and the catalog in step.
Events leave in HTTP binary mode (CloudEvents SDK 1.x), carrying the W3C
``traceparent`` of the request that caused them as the distributed-tracing extension.
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from quill.lazy import Lazy
from quill.settings import get_settings
from quill.sink import Sink, SinkError, is_plain_http

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ARTICLE_CREATED",
    "ARTICLE_DELETED",
    "ARTICLE_FAVORITED",
    "ARTICLE_IMPORT_REQUESTED",
    "ARTICLE_UNFAVORITED",
    "ARTICLE_UPDATED",
    "COMMENT_CREATED",
    "COMMENT_DELETED",
    "EMITTED",
    "PROFILE_FOLLOWED",
    "PROFILE_UNFOLLOWED",
    "USER_REGISTERED",
    "USER_UPDATED",
    "Envelope",
    "SendFailed",
    "aclose",
    "deliver",
    "get_client",
    "remember_missing_sniffio",
    "send",
    "serve_in_process",
    "source_of",
]

USER_REGISTERED = "io.quill.user.registered.v1"
USER_UPDATED = "io.quill.user.updated.v1"
PROFILE_FOLLOWED = "io.quill.profile.followed.v1"
PROFILE_UNFOLLOWED = "io.quill.profile.unfollowed.v1"
ARTICLE_CREATED = "io.quill.article.created.v1"
ARTICLE_UPDATED = "io.quill.article.updated.v1"
ARTICLE_DELETED = "io.quill.article.deleted.v1"
ARTICLE_FAVORITED = "io.quill.article.favorited.v1"
ARTICLE_UNFAVORITED = "io.quill.article.unfavorited.v1"
COMMENT_CREATED = "io.quill.comment.created.v1"
COMMENT_DELETED = "io.quill.comment.deleted.v1"
ARTICLE_IMPORT_REQUESTED = "io.quill.article.import.requested.v1"

EMITTED = frozenset(
    {
        USER_REGISTERED,
        USER_UPDATED,
        PROFILE_FOLLOWED,
        PROFILE_UNFOLLOWED,
        ARTICLE_CREATED,
        ARTICLE_UPDATED,
        ARTICLE_DELETED,
        ARTICLE_FAVORITED,
        ARTICLE_UNFAVORITED,
        COMMENT_CREATED,
        COMMENT_DELETED,
    }
)


def source_of(function: str) -> str:
    """The CloudEvents ``source`` of events a function emits: a URI reference naming it."""
    return f"/quill/{function}"


@dataclass(frozen=True)
class Envelope:
    """An event as stored in the outbox: everything needed to send it again, identically."""

    id: str
    type: str
    source: str
    subject: str
    data: dict[str, Any]
    time: datetime
    traceparent: str | None = None

    @classmethod
    def new(cls, type: str, source: str, subject: str | int, data: dict[str, Any], traceparent: str | None) -> Envelope:
        return cls(str(uuid.uuid4()), type, source, str(subject), data, datetime.now(UTC), traceparent)

    def to_cloudevent(self) -> CloudEvent:
        attributes: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "time": self.time.isoformat(),
            "datacontenttype": "application/json",
        }
        if self.traceparent:
            attributes["traceparent"] = self.traceparent
        return CloudEvent(attributes, self.data)

    def binary_headers(self) -> list[tuple[str, str]] | None:
        """The HTTP binary-mode headers ``to_binary`` would send for this event, or None if a
        value would need the binding's percent-encoding (then the SDK sends it)."""
        headers = [
            ("ce-specversion", "1.0"),
            ("ce-id", self.id),
            ("ce-source", self.source),
            ("ce-type", self.type),
            ("ce-subject", self.subject),
            ("ce-time", self.time.isoformat()),
            ("content-type", "application/json"),
        ]
        if self.traceparent:
            headers.append(("ce-traceparent", self.traceparent))
        return headers if all(_PLAIN_HEADER.fullmatch(value) for _, value in headers) else None


# Printable ASCII but space, '"' and '%': what the HTTP binding sends unencoded.
_PLAIN_HEADER = re.compile(r"[!#-$&-~]+")


class SendFailed(Exception):
    """The sink did not take the event: unreachable, too slow, or not a 2xx."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def refused(self) -> bool:
        """The sink answered and will never take this event (a 4xx other than 408/429)."""
        return self.status is not None and 400 <= self.status < 500 and self.status not in (408, 429)


def remember_missing_sniffio() -> None:
    """httpcore runs ``import sniffio`` in every lock and cancel shield it makes, several per
    send. Without sniffio installed each of those imports searches ``sys.path`` again (a stat
    per entry): py-spy put 10% of a served write's CPU there. A ``None`` in ``sys.modules``
    makes the same import fail at once, as it would anyway."""
    import importlib.util

    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]  # None marks a module as absent


async def _connect() -> httpx.AsyncClient:
    # Imported on the first send: a read-only request never pays for the HTTP client.
    import httpx

    remember_missing_sniffio()

    timeout = get_settings().event_timeout
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 1.0)))


async def _disconnect(client: httpx.AsyncClient) -> None:
    await client.aclose()


_client: Lazy[httpx.AsyncClient] = Lazy(_connect, _disconnect)
get_client = _client.get
_sinks: dict[str, Sink] = {}


async def aclose() -> None:
    for sink in _sinks.values():
        sink.close()
    _sinks.clear()
    await _client.aclose()


async def send(event: CloudEvent, sink: str) -> httpx.Response:
    """POST one event in binary mode; raises ``SendFailed`` unless the sink took it (2xx)."""
    import httpx

    headers, body = to_binary(event)
    try:
        response = await (await get_client()).post(sink, headers=headers, content=body)
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        raise SendFailed(f"HTTP {exc.response.status_code}", exc.response.status_code) from exc
    except httpx.HTTPError as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}") from exc
    return response


_T = TypeVar("_T")

# Sinks this very process serves (``serve_in_process``), by URL.
_in_process: dict[str, Callable[[Envelope], Awaitable[None]]] = {}


def serve_in_process(sink: str, take: Callable[[Envelope], Awaitable[None]] | None) -> None:
    """Hand this process's events for ``sink`` to ``take``, or stop doing so (``None``).

    For a sink this very process serves (``quill dev``'s broker): over HTTP, each event
    would cost the process both ends of a request. ``take`` raises ``SendFailed`` unless it
    took the event, as the sink's answer would."""
    if take is None:
        _in_process.pop(sink, None)
    else:
        _in_process[sink] = take


async def _in_time(work: Awaitable[_T]) -> _T:
    """``work``'s result, or ``SendFailed`` once ``EVENT_TIMEOUT`` has passed."""
    try:
        async with asyncio.timeout(get_settings().event_timeout):
            return await work
    except TimeoutError:
        raise SendFailed("ReadTimeout: the sink did not answer in time") from None


async def deliver(envelope: Envelope, sink: str) -> None:
    """Send one of Quill's own events as ``send`` would: in process when this process
    serves the sink, else over a kept-alive connection when the sink is plain HTTP (the
    broker's ingress in the cluster, the local broker). Raises ``SendFailed`` unless the
    sink took it (2xx)."""
    take = _in_process.get(sink)
    if take is not None:
        await _in_time(take(envelope))
        return
    headers = envelope.binary_headers()
    if headers is None or not is_plain_http(sink):
        await send(envelope.to_cloudevent(), sink)
        return
    client = _sinks.get(sink) or _sinks.setdefault(sink, Sink(sink))
    try:
        reply = await _in_time(client.post(headers, orjson.dumps(envelope.data)))
    except (OSError, SinkError) as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}") from exc
    if not reply.is_success:
        raise SendFailed(f"HTTP {reply.status}", reply.status)
