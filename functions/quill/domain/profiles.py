"""Public profiles and the follow graph. Owns ``follows``; reads ``users``.

A profile read is the read side's (``reads.profiles``): it keeps the
viewer-independent part (``base``) and asks ``is_following`` every time, so a follow
shows at once.
"""

from __future__ import annotations

from typing import Any

from quill import events
from quill.db import Connection, autocommit
from quill.domain.outbox import Transaction, transaction
from quill.domain.values import Profile
from quill.errors import NotFoundError, ValidationError

__all__ = ["base", "follow", "is_following", "unfollow"]

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


async def base(conn: Connection | None, username: str) -> dict[str, Any]:
    """``{id, username, bio, image}``, on ``conn`` or a connection of its own; 404 if
    there is no such user."""
    if conn is None:
        async with autocommit() as own:
            row = await (await own.execute(_BY_USERNAME, (username,))).fetchone()
    else:
        row = await (await conn.execute(_BY_USERNAME, (username,))).fetchone()
    if row is None:
        raise _not_found()
    return dict(row)


def _profile(user: dict[str, Any], following: bool) -> Profile:
    return Profile(user["username"], user["bio"], user["image"], following)


async def is_following(viewer_id: int, user_id: int) -> bool:
    async with autocommit() as conn:
        row = await (await conn.execute(_FOLLOWING, (viewer_id, user_id))).fetchone()
    return bool(row and row["following"])


async def _change(statement: str, event: str, viewer_id: int, followee: dict[str, Any], tx: Transaction) -> None:
    """Follow or unfollow; an event only when the relationship really changed."""
    row = await (await tx.conn.execute(statement, (viewer_id, followee["id"]))).fetchone()
    if row is not None:
        await tx.emit(
            event,
            followee["id"],
            {
                "follower": {"id": viewer_id, "username": row["follower"]},
                "followee": {"id": followee["id"], "username": followee["username"]},
            },
        )


async def follow(viewer_id: int, username: str) -> Profile:
    async with transaction("profile") as tx:
        followee = await base(tx.conn, username)
        if followee["id"] == viewer_id:
            raise ValidationError({"profile": ["cannot follow yourself"]})
        await _change(_FOLLOW, events.PROFILE_FOLLOWED, viewer_id, followee, tx)
    return _profile(followee, True)


async def unfollow(viewer_id: int, username: str) -> Profile:
    async with transaction("profile") as tx:
        followee = await base(tx.conn, username)
        await _change(_UNFOLLOW, events.PROFILE_UNFOLLOWED, viewer_id, followee, tx)
    return _profile(followee, False)
