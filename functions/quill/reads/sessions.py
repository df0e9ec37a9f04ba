"""Whether a session is live, as every signed-in request asks: memory, then Redis, then PostgreSQL.

A live answer is kept in this process's memory and either answer in Redis for
``LIVE_SECONDS``; a revocation replaces both everywhere at once (``stale.revoke_sessions``).
PostgreSQL holds the truth, so a Redis that lost its data cannot bring a revoked token back.
"""

from __future__ import annotations

import functools

from quill.auth import sessions
from quill.reads import keys, store
from quill.reads.stale import LIVE_SECONDS

__all__ = ["is_live"]


async def is_live(session_id: str) -> bool:
    """Whether access tokens of this session are still good."""
    store.start()
    load = functools.partial(sessions.is_live, session_id)
    return await store.flag(keys.session_key(session_id), load, seconds=LIVE_SECONDS, operation="revocation")
