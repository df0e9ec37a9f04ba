"""The cached read of the signed-in user's own record (``GET /api/user``): in memory
(``user:<id>``) until an update of that user drops it, here and, by the channel, everywhere.
"""

from __future__ import annotations

import functools
from dataclasses import asdict

import orjson

from quill.domain import users
from quill.domain.values import User
from quill.reads import keys, store

__all__ = ["current_user"]


async def current_user(user_id: int) -> User | None:
    """The caller's own record (``GET /api/user``), from memory after the first read: an
    update of that user drops it, so the next read after a change shows the change."""
    store.start()
    data = orjson.loads(await store.shared(keys.user_key(user_id), functools.partial(_user_json, user_id)))
    return User(**data) if data else None


async def _user_json(user_id: int) -> bytes:
    user = await users.get(user_id)
    return orjson.dumps(asdict(user) if user else None)
