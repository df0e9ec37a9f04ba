"""What can go wrong, as the domain says it: one tree, no HTTP in it.

    QuillError                    {field: [message, ...]}
    ├── UnauthenticatedError      token is missing / is invalid, credentials invalid
    ├── ForbiddenError            article / comment forbidden
    ├── NotFoundError             article / profile / comment / route not found
    ├── MethodNotAllowedError     the path is served, not for this method (``allowed``)
    ├── ConflictError             username / email has already been taken
    ├── MalformedError            a request that is not what it claims (not a CloudEvent)
    ├── TooLargeError             a body over its limit
    ├── UnsupportedMediaTypeError a body that is not sent as JSON
    ├── ValidationError           field -> messages
    │   └── EventRejected         an event's data that can never be handled (``reason``)
    ├── RateLimitedError          a limit was hit (``retry_after`` seconds)
    └── UnavailableError          PostgreSQL unreachable, pool exhausted (``retry_after``)

Domain code raises these. ``quill.http`` alone maps them to statuses, headers and the
RealWorld body; ``quill.consumer`` to a permanent or a retryable event outcome.
Anything else that escapes a handler is a bug and becomes a JSON 500 with no detail.
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "EventRejected",
    "ForbiddenError",
    "MalformedError",
    "MethodNotAllowedError",
    "NotFoundError",
    "QuillError",
    "RateLimitedError",
    "TooLargeError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnsupportedMediaTypeError",
    "ValidationError",
    "token_invalid",
    "token_missing",
]


class QuillError(Exception):
    """What went wrong, as messages per field (RealWorld's ``errors`` object)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


class UnauthenticatedError(QuillError):
    pass


class ForbiddenError(QuillError):
    pass


class NotFoundError(QuillError):
    pass


class MethodNotAllowedError(QuillError):
    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        super().__init__({"method": [f"{method} is not allowed here"]})
        self.allowed = allowed


class ConflictError(QuillError):
    pass


class MalformedError(QuillError):
    pass


class TooLargeError(QuillError):
    pass


class UnsupportedMediaTypeError(QuillError):
    pass


class ValidationError(QuillError):
    pass


class EventRejected(ValidationError):
    """This event's data can never be handled; retrying would not help."""

    def __init__(self, reason: str, details: dict[str, list[str]] | None = None) -> None:
        super().__init__(details or {"event": [reason]})
        self.reason = reason


class RateLimitedError(QuillError):
    def __init__(self, limit: str, retry_after: int) -> None:
        super().__init__({limit: ["too many requests, try again later"]})
        self.retry_after = max(1, retry_after)


class UnavailableError(QuillError):
    def __init__(self, what: str = "database") -> None:
        super().__init__({what: ["is unavailable, try again later"]})
        self.retry_after = 1


def token_missing() -> UnauthenticatedError:
    return UnauthenticatedError({"token": ["is missing"]})


def token_invalid() -> UnauthenticatedError:
    return UnauthenticatedError({"token": ["is invalid"]})
