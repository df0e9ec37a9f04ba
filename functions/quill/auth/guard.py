"""Who is calling: the ``Authorization`` header turned into verified claims, or a 401.

``Token <jwt>`` (RealWorld) and ``Bearer <jwt>`` are both accepted. A token that is
present but wrong is refused even on routes where a token is optional, as the
RealWorld contract says.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Literal

from quill.errors import token_invalid, token_missing
from quill.reads.sessions import is_live

if TYPE_CHECKING:
    from quill.auth.tokens import Claims

__all__ = ["AuthMode", "authenticate"]

AuthMode = Literal["none", "optional", "required"]

_SCHEMES = {"token", "bearer"}


def _token_of(header: str | None) -> str | None:
    """The token of a ``Token``/``Bearer`` header; None without one, 401 for any other form."""
    if header is None or not header.strip():
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() not in _SCHEMES or not token.strip():
        raise token_invalid()
    return token.strip()


@cache
def _decoder() -> Callable[[str], Claims]:
    """The token decoder, imported on the first token (once: an import statement in the
    request path costs a lookup on every call). PyJWT and cryptography cost a cold start
    ~30 ms that anonymous reads and health probes never need."""
    from quill.auth.tokens import decode_access_token

    return decode_access_token


async def authenticate(authorization: bytes | None, mode: AuthMode) -> Claims | None:
    """The verified caller of a request whose ``Authorization`` header is ``authorization``
    (the raw value, as the server parsed it; None without the header)."""
    if mode == "none":
        return None
    token = _token_of(authorization.decode("latin-1") if authorization is not None else None)
    if token is None:
        if mode == "required":
            raise token_missing()
        return None
    claims = _decoder()(token)
    if not await is_live(claims.session_id):
        raise token_invalid()
    return claims
