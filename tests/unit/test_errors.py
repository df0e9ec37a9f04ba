"""The error tree, mapped twice: to HTTP statuses (``quill.http``) and to event outcomes (``quill.consumer``)."""

from __future__ import annotations

import orjson
import pytest

from quill import errors
from quill.consumer import is_permanent
from quill.errors import (
    ConflictError,
    EventRejected,
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
from quill.http import STATUS_OF, error_body, error_response, status_of

# One of each kind, with the status a client sees and whether an event that raised it is retried.
EXAMPLES: dict[type[QuillError], tuple[QuillError, int, bool]] = {
    MalformedError: (MalformedError({"event": ["is not a valid CloudEvent"]}), 400, False),
    UnauthenticatedError: (errors.token_missing(), 401, False),
    ForbiddenError: (ForbiddenError({"article": ["forbidden"]}), 403, False),
    NotFoundError: (NotFoundError({"article": ["not found"]}), 404, False),
    MethodNotAllowedError: (MethodNotAllowedError("PATCH", ("GET", "OPTIONS")), 405, False),
    ConflictError: (ConflictError({"username": ["has already been taken"]}), 409, True),
    TooLargeError: (TooLargeError({"body": ["is too large"]}), 413, False),
    UnsupportedMediaTypeError: (UnsupportedMediaTypeError({"body": ["must be sent as application/json"]}), 415, False),
    ValidationError: (ValidationError({"title": ["can't be blank"]}), 422, False),
    EventRejected: (EventRejected("author not found", {"author": ["not found"]}), 422, False),
    RateLimitedError: (RateLimitedError("rate_limit", 7), 429, True),
    UnavailableError: (UnavailableError("database"), 503, True),
}


def _tree(root: type[QuillError]) -> set[type[QuillError]]:
    found: set[type[QuillError]] = set()
    for child in root.__subclasses__():
        found |= {child, *_tree(child)}
    return found


def test_every_error_in_the_tree_is_exported_and_has_an_example() -> None:
    exported = {getattr(errors, name) for name in errors.__all__}
    assert _tree(QuillError) <= exported
    assert set(EXAMPLES) == _tree(QuillError)


KINDS = sorted(EXAMPLES, key=lambda kind: kind.__name__)


@pytest.mark.parametrize("kind", KINDS)
def test_every_error_has_a_4xx_or_5xx_status(kind: type[QuillError]) -> None:
    error, status, _ = EXAMPLES[kind]
    assert status_of(error) == status
    assert any(ancestor in STATUS_OF for ancestor in kind.__mro__ if ancestor is not QuillError)


@pytest.mark.parametrize("kind", KINDS)
def test_an_event_is_retried_only_when_something_in_its_way_may_pass(kind: type[QuillError]) -> None:
    error, status, retried = EXAMPLES[kind]
    assert is_permanent(error) is not retried
    assert status < 500 or retried  # a 5xx is always worth another delivery


def test_the_body_is_realworlds_and_the_headers_say_when_and_how() -> None:
    limited = error_response(RateLimitedError("rate_limit", 0))
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"  # never 0: "now" would be retried at once
    assert orjson.loads(limited.body) == {"errors": {"rate_limit": ["too many requests, try again later"]}}
    assert error_response(UnavailableError()).headers["retry-after"] == "1"
    assert error_response(MethodNotAllowedError("PATCH", ("GET", "OPTIONS"))).headers["allow"] == "GET, OPTIONS"
    assert "retry-after" not in error_response(NotFoundError({"article": ["not found"]})).headers
    assert error_body({"route": ["not found"]}) == {"errors": {"route": ["not found"]}}
