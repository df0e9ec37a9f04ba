"""Sessions: rotating refresh tokens and revocation. Owns ``sessions`` and ``refresh_tokens``.

A session starts at login or registration and lives ``REFRESH_TOKEN_TTL`` (30 days);
a refresh extends it by as much again. Its access tokens expire when it does (unless
``ACCESS_TOKEN_TTL`` caps them): RealWorld frontends keep the token they got at login
and never refresh, and every signed-in request checks that the session is live anyway,
so a short access lifetime bought no safety and signed those frontends out after an hour.

Its refresh tokens are single-use: each refresh returns a new one, and presenting a used
one again (a stolen copy) revokes the whole session. Logout revokes the session, which
also kills every access token that names it. Whether a session is live is kept by the
read side (``reads.sessions``) for a short time; PostgreSQL holds the truth, so a Redis
that lost its data cannot bring a revoked token back.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from quill.db import Connection, connection
from quill.errors import UnauthenticatedError
from quill.observability import get_logger
from quill.reads import stale
from quill.settings import get_settings

__all__ = ["Session", "begin", "ends_at", "forget", "is_live", "refresh", "revoke", "revoke_others", "start"]

_log = get_logger("quill.sessions")

_START = """
INSERT INTO sessions (id, user_id, expires_at) VALUES (%(id)s, %(user_id)s, clock_timestamp() + %(ttl)s)
RETURNING expires_at
"""
_ISSUE = "INSERT INTO refresh_tokens (token_hash, session_id) VALUES (%s, %s)"
_CLAIM = """
SELECT r.used_at, s.id AS session_id, s.user_id, s.revoked_at, s.expires_at < clock_timestamp() AS expired
FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
WHERE r.token_hash = %s
FOR UPDATE OF r, s
"""
_MARK_USED = "UPDATE refresh_tokens SET used_at = clock_timestamp() WHERE token_hash = %s"
_EXTEND = "UPDATE sessions SET expires_at = clock_timestamp() + %s WHERE id = %s RETURNING expires_at"
_ENDS_AT = "SELECT expires_at FROM sessions WHERE id = %s"
_REVOKE = "UPDATE sessions SET revoked_at = coalesce(revoked_at, clock_timestamp()) WHERE id = %s"
_REVOKE_OTHERS = """
UPDATE sessions SET revoked_at = clock_timestamp()
WHERE user_id = %s AND id <> %s AND revoked_at IS NULL
RETURNING id
"""
_LIVE = "SELECT revoked_at IS NULL AND expires_at > clock_timestamp() AS live FROM sessions WHERE id = %s"


@dataclass(frozen=True)
class Session:
    """A signed-in session: whose it is, its refresh token, and when it ends."""

    id: str
    user_id: int
    refresh_token: str
    expires_at: datetime


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def _issue(conn: Connection, session_id: str) -> str:
    token = secrets.token_urlsafe(32)
    await conn.execute(_ISSUE, (_digest(token), session_id))
    return token


async def start(conn: Connection, user_id: int) -> Session:
    """Open a session inside the caller's transaction (registration commits it with the user)."""
    session_id = secrets.token_urlsafe(16)
    ttl = timedelta(seconds=get_settings().refresh_token_ttl)
    row = await (await conn.execute(_START, {"id": session_id, "user_id": user_id, "ttl": ttl})).fetchone()
    assert row is not None
    return Session(session_id, user_id, await _issue(conn, session_id), row["expires_at"])


async def begin(user_id: int) -> Session:
    async with connection() as conn:
        return await start(conn, user_id)


async def refresh(refresh_token: str) -> Session:
    """Trade a refresh token for a new one, extending the session; a reused token revokes it."""
    reused: str | None = None
    async with connection() as conn:
        cursor = await conn.execute(_CLAIM, (_digest(refresh_token),))
        row = await cursor.fetchone()
        if row is None or row["revoked_at"] is not None or row["expired"]:
            raise UnauthenticatedError({"token": ["is invalid"]})
        if row["used_at"] is not None:
            await conn.execute(_REVOKE, (row["session_id"],))
            reused = row["session_id"]
        else:
            await conn.execute(_MARK_USED, (_digest(refresh_token),))
            ttl = timedelta(seconds=get_settings().refresh_token_ttl)
            extended = await (await conn.execute(_EXTEND, (ttl, row["session_id"]))).fetchone()
            assert extended is not None
            issued = await _issue(conn, row["session_id"])
            session = Session(row["session_id"], row["user_id"], issued, extended["expires_at"])
    if reused is not None:
        _log.warning("refresh_token_reused", session_id=reused)
        await forget(reused)
        raise UnauthenticatedError({"token": ["is invalid"]})
    return session


async def ends_at(session_id: str) -> datetime | None:
    """When the session ends (None if there is no such session)."""
    async with connection() as conn:
        row = await (await conn.execute(_ENDS_AT, (session_id,))).fetchone()
    return row["expires_at"] if row else None


async def revoke(session_id: str) -> None:
    async with connection() as conn:
        await conn.execute(_REVOKE, (session_id,))
    await forget(session_id)


async def revoke_others(conn: Connection, user_id: int, keep: str) -> list[str]:
    """Inside the caller's transaction (a password change): end every other session."""
    rows = await (await conn.execute(_REVOKE_OTHERS, (user_id, keep))).fetchall()
    return [str(row["id"]) for row in rows]


async def forget(*session_ids: str) -> None:
    """After commit: make revoked sessions fail at once, everywhere (``reads.stale``)."""
    await stale.revoke_sessions(*session_ids)


async def is_live(session_id: str) -> bool:
    """Whether access tokens of this session are still good, as PostgreSQL says. Every
    signed-in request asks ``reads.sessions.is_live``, which keeps the answer."""
    async with connection() as conn:
        cursor = await conn.execute(_LIVE, (session_id,))
        row = await cursor.fetchone()
    return bool(row and row["live"])
