"""Public profiles and the follow graph. Owns ``follows``; reads ``users``.

The viewer-independent part of a profile is cached (``profile:<username>``); whether
the viewer follows it is always read from PostgreSQL, so a follow shows at once.
"""

from __future__ import annotations

from typing import Any

from quill import cache, events
from quill.db import Connection, reading
from quill.domain import views
from quill.domain.outbox import Transaction, transaction
from quill.domain.values import Profile
from quill.domain.views import profile_key
from quill.errors import NotFoundError, ValidationError

__all__ = ["follow", "get", "unfollow"]

_BY_USERNAME = "SELECT id, username, bio, image FROM users WHERE username = %s"
_FOLLOWING = "SELECT EXISTS (SELECT 1 FROM follows WHERE follower_id = %s AND followee_id = %s) AS following"
_FOLLOW = """
INSERT INTO follows (follower_id, followee_id) VALUES (%s, %s) ON CONFLICT DO NOTHING
RETURNING (SELECT username FROM users WHERE id = follower_id) AS follower
"""
_UNFOLLOW = """
DELETE FROM follows WHERE follower_id = %s AND followee_id = %s
RETURNING (SELECT username FROM users WHERE id = follower_id) AS follower
"""


def _not_found() -> NotFoundError:
    return NotFoundError({"profile": ["not found"]})


async def _base(conn: Connection | None, username: str) -> dict[str, Any]:
    """``{id, username, bio, image}`` from the cache or PostgreSQL; 404 if there is no such user."""
    name = profile_key(username)
    view = await cache.load_view(name)
    if view is not None:
        return view
    if conn is None:
        async with reading() as own:
            row = await (await own.execute(_BY_USERNAME, (username,))).fetchone()
    else:
        row = await (await conn.execute(_BY_USERNAME, (username,))).fetchone()
    if row is None:
        raise _not_found()
    view = dict(row)
    await cache.store_view(name, view)
    return view


def _profile(base: dict[str, Any], following: bool) -> Profile:
    return Profile(base["username"], base["bio"], base["image"], following)


async def get(username: str, viewer_id: int | None) -> Profile:
    base = await _base(None, username)
    if viewer_id is None or viewer_id == base["id"]:
        return _profile(base, False)
    async with reading() as conn:
        row = await (await conn.execute(_FOLLOWING, (viewer_id, base["id"]))).fetchone()
    return _profile(base, bool(row and row["following"]))


async def _change(statement: str, event: str, viewer_id: int, base: dict[str, Any], tx: Transaction) -> None:
    """Follow or unfollow; an event only when the relationship really changed."""
    row = await (await tx.conn.execute(statement, (viewer_id, base["id"]))).fetchone()
    tx.stale.add(views.viewer_key(viewer_id))  # the follower's marks, kept by posts
    if row is not None:
        await tx.emit(
            event,
            base["id"],
            {
                "follower": {"id": viewer_id, "username": row["follower"]},
                "followee": {"id": base["id"], "username": base["username"]},
            },
        )


async def follow(viewer_id: int, username: str) -> Profile:
    async with transaction("profile") as tx:
        base = await _base(tx.conn, username)
        if base["id"] == viewer_id:
            raise ValidationError({"profile": ["cannot follow yourself"]})
        await _change(_FOLLOW, events.PROFILE_FOLLOWED, viewer_id, base, tx)
    return _profile(base, True)


async def unfollow(viewer_id: int, username: str) -> Profile:
    async with transaction("profile") as tx:
        base = await _base(tx.conn, username)
        await _change(_UNFOLLOW, events.PROFILE_UNFOLLOWED, viewer_id, base, tx)
    return _profile(base, False)
