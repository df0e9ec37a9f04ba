"""The errors a client can see, each one status and one RealWorld error body.

    ApiError                      {"errors": {key: [message, ...]}}
    ├── Unauthorized (401)        token is missing / is invalid, credentials invalid
    ├── Forbidden (403)           article / comment forbidden
    ├── NotFound (404)            article / profile / comment not found
    ├── MethodNotAllowed (405)
    ├── Conflict (409)            username / email has already been taken
    ├── PayloadTooLarge (413)
    ├── UnsupportedMediaType (415) a body that is not JSON
    ├── Unprocessable (422)       validation: field -> messages
    ├── TooManyRequests (429)     carries Retry-After
    └── ServiceUnavailable (503)  PostgreSQL unreachable, pool exhausted

Domain code raises these; ``quill.function`` turns them into responses. Anything else
that escapes a handler is a bug and becomes a JSON 500 with no detail.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "Conflict",
    "Forbidden",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "Unprocessable",
    "UnsupportedMediaType",
    "token_invalid",
    "token_missing",
]


class ApiError(Exception):
    status_code = 500

    def __init__(self, errors: dict[str, list[str]], headers: dict[str, str] | None = None) -> None:
        super().__init__(errors)
        self.errors = errors
        self.headers = headers or {}

    @classmethod
    def of(cls, key: str, message: str) -> ApiError:
        return cls({key: [message]})

    def body(self) -> dict[str, dict[str, list[str]]]:
        return {"errors": self.errors}


class Unauthorized(ApiError):
    status_code = 401


class Forbidden(ApiError):
    status_code = 403


class NotFound(ApiError):
    status_code = 404


class MethodNotAllowed(ApiError):
    status_code = 405


class Conflict(ApiError):
    status_code = 409


class PayloadTooLarge(ApiError):
    status_code = 413


class UnsupportedMediaType(ApiError):
    status_code = 415


class Unprocessable(ApiError):
    status_code = 422


class TooManyRequests(ApiError):
    status_code = 429

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(
            {scope: ["too many requests, try again later"]},
            {"Retry-After": str(max(1, retry_after))},
        )
        self.retry_after = max(1, retry_after)


class ServiceUnavailable(ApiError):
    status_code = 503

    def __init__(self, what: str = "database") -> None:
        super().__init__({what: ["is unavailable, try again later"]}, {"Retry-After": "1"})


def token_missing() -> Unauthorized:
    return Unauthorized({"token": ["is missing"]})


def token_invalid() -> Unauthorized:
    return Unauthorized({"token": ["is invalid"]})
