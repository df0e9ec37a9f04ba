"""HTTP edges shared by every function: JSON in and out, errors as HTTP, query values, the caller's address.

Everything a client sends is untrusted: bodies are size-limited while they stream in,
JSON must parse into the expected wrapper object, and query values are validated
before they reach SQL. Each failure is one RealWorld error body, never a 500.

``STATUS_OF`` is the one table from the ``QuillError`` tree to HTTP statuses, and
``error_body`` the one builder of ``{"errors": ...}``: every answer that is an error,
from a handler, the edge or the server's parser, goes through them.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from quill.errors import (
    ConflictError,
    ForbiddenError,
    MalformedError,
    MethodNotAllowedError,
    NotFoundError,
    QuillError,
    RateLimitedError,
    TooLargeError,
    UnauthenticatedError,
    UnavailableError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from quill.settings import get_settings

__all__ = [
    "NOSNIFF",
    "NO_STORE",
    "STATUS_OF",
    "JSONResponse",
    "client_ip",
    "empty",
    "error_body",
    "error_response",
    "json",
    "page",
    "query_text",
    "raw_json",
    "read_body",
    "read_wrapped",
    "status_of",
]

_JSON_MEDIA_TYPE = "application/json; charset=utf-8"
# X-Content-Type-Options on every response: a browser never sniffs a body into HTML.
NOSNIFF = b"nosniff"
# Cache-Control on every response that carries a token: no cache or proxy keeps one.
NO_STORE = {"Cache-Control": "no-store"}
_MAX_DEPTH = 32


class JSONResponse(Response):
    media_type = _JSON_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(content, status_code=status_code, headers=headers)


# What each error is as HTTP. A subclass takes its nearest ancestor's status.
STATUS_OF: dict[type[QuillError], int] = {
    MalformedError: 400,
    UnauthenticatedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    MethodNotAllowedError: 405,
    ConflictError: 409,
    TooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    ValidationError: 422,
    RateLimitedError: 429,
    UnavailableError: 503,
}


def status_of(error: QuillError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return 500


def error_body(errors: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    """RealWorld's error body (``api/realworld.md``): messages per field under ``errors``."""
    return {"errors": errors}


def error_response(error: QuillError, headers: dict[str, str] | None = None) -> JSONResponse:
    """``error`` as its status, its headers (``Allow``, ``Retry-After``) and its body."""
    own: dict[str, str] = {}
    if isinstance(error, MethodNotAllowedError):
        own["Allow"] = ", ".join(error.allowed)
    elif isinstance(error, RateLimitedError | UnavailableError):
        own["Retry-After"] = str(error.retry_after)
    return json(error_body(error.errors), status_of(error), {**own, **headers} if headers else own)


def raw_json(body: bytes, status_code: int = 200) -> Response:
    """A body already encoded as JSON (a cached page)."""
    return Response(body, status_code=status_code, media_type=_JSON_MEDIA_TYPE)


def empty(status_code: int = 204) -> Response:
    return Response(status_code=status_code)


async def read_body(request: Request) -> bytes:
    """The whole body, refused with 413 as soon as it passes ``MAX_BODY_BYTES``."""
    limit = get_settings().max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLargeError({"body": [f"is too large (maximum is {limit} bytes)"]})
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLargeError({"body": [f"is too large (maximum is {limit} bytes)"]})
            chunks.append(chunk)
    except ClientDisconnect:
        raise ValidationError({"body": ["was not received completely"]}) from None
    return b"".join(chunks)


def _depth(value: Any, level: int = 0) -> int:
    if level > _MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(item, level + 1) for item in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(item, level + 1) for item in value), default=level + 1)
    return level


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


async def read_wrapped(request: Request, wrapper: str) -> dict[str, Any]:
    """The object under ``wrapper`` in a JSON body such as ``{"article": {...}}``.

    The body must be sent as JSON (415 otherwise): a ``text/plain`` body is what a page on
    another origin can send without a CORS preflight. No body at all is a missing field
    (422). Duplicate keys are not refused: the last one wins, as in JavaScript's
    ``JSON.parse`` (RFC 8259 leaves it to the reader)."""
    content_type = request.headers.get("content-type")
    if content_type is not None and not _is_json(content_type):
        raise UnsupportedMediaTypeError({"body": ["must be sent as application/json"]})
    raw = await read_body(request)
    if content_type is None and raw:
        raise UnsupportedMediaTypeError({"body": ["must be sent as application/json"]})
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationError({"body": ["is not valid JSON"]}) from None
    if not isinstance(document, dict):
        raise ValidationError({"body": [f"must be a JSON object with a {wrapper!r} key"]})
    if _depth(document) > _MAX_DEPTH:
        raise ValidationError({"body": ["is nested too deeply"]})
    inner = document.get(wrapper)
    if inner is None:
        raise ValidationError({wrapper: ["can't be blank"]})
    if not isinstance(inner, dict):
        raise ValidationError({wrapper: ["must be an object"]})
    return inner


def _query_int(params: QueryParams, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit():  # "", "-1", "1.5", "abc", full-width digits
        raise ValidationError({name: [f"must be a whole number of at least {minimum}"]})
    value = int(raw)
    if value < minimum:
        raise ValidationError({name: [f"must be a whole number of at least {minimum}"]})
    return min(value, maximum)


def query_text(request: Request, name: str, max_length: int = 256) -> str | None:
    """An optional text filter from the query; absent or empty means "no filter"."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if "\x00" in raw:
        raise ValidationError({name: ["must not contain NUL characters"]})
    if len(raw) > max_length:
        raise ValidationError({name: [f"must be text of at most {max_length} characters"]})
    return raw


def page(request: Request) -> tuple[int, int]:
    """``limit`` (1..100, default 20) and ``offset`` (>= 0, default 0) from the query."""
    return _page_of(request.scope["query_string"])


@lru_cache(maxsize=256)
def _page_of(query_string: bytes) -> tuple[int, int]:
    """Known by the very query string: clients ask for the same few pages again and again,
    and parsing one (Starlette's ``QueryParams``) cost ~10% of a feed read served from
    memory. A query that fails raises, so nothing is kept for it."""
    params = QueryParams(query_string)
    return _query_int(params, "limit", 20, 1, 100), _query_int(params, "offset", 0, 0, 1_000_000_000)


def client_ip(request: Request) -> str:
    """The caller's address: the peer's, or with ``TRUSTED_PROXY_HOPS=n`` the n-th
    ``X-Forwarded-For`` entry from the right, appended by the outermost trusted proxy.

    Loopback entries are the pod's own proxies (Knative's queue-proxy, the Istio sidecar:
    they append 127.0.0.1) and are never counted as hops; only Quill reads the header
    (the server does not rewrite the peer from it)."""
    hops = get_settings().trusted_proxy_hops
    peer = request.client.host if request.client else "unknown"
    if hops == 0:
        return peer
    forwarded = [
        entry
        for part in request.headers.get("x-forwarded-for", "").split(",")
        if (entry := part.strip()) and not _is_loopback(entry)
    ]
    if len(forwarded) >= hops:
        return forwarded[-hops]
    return peer


def _is_loopback(address: str) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address == "localhost"
    mapped = parsed.ipv4_mapped if isinstance(parsed, ipaddress.IPv6Address) else None
    return parsed.is_loopback or (mapped is not None and mapped.is_loopback)
