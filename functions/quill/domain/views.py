"""The cached views and which writes make them stale: the one place that names the keys.

The write paths drop what they changed right after commit (read-your-writes); the
``cache`` event function drops the same keys again from the events, so a view left
stale by a Redis blip during a write is still dropped once Redis answers.
"""

from __future__ import annotations

from quill import cache
from quill.db import Connection

__all__ = ["article_key", "author_views", "drop_articles", "drop_author", "profile_key"]

_SLUGS_OF_AUTHOR = "SELECT slug FROM articles WHERE author_id = %s"


def profile_key(username: str) -> str:
    return cache.key("profile", username)


def article_key(slug: str) -> str:
    return cache.key("article", slug)


async def drop_articles(*slugs: str, strict: bool = False) -> None:
    await cache.invalidate({article_key(slug) for slug in slugs if slug}, strict=strict)


async def author_views(conn: Connection, user_id: int, *usernames: str) -> set[str]:
    """The keys a profile change makes stale: the profile under every name it had, and every
    article that embeds it. Read inside the writer's transaction, dropped after its commit."""
    rows = await (await conn.execute(_SLUGS_OF_AUTHOR, (user_id,))).fetchall()
    return {profile_key(name) for name in usernames if name} | {article_key(row["slug"]) for row in rows}


async def drop_author(conn: Connection, user_id: int, *usernames: str, strict: bool = False) -> None:
    await cache.invalidate(await author_views(conn, user_id, *usernames), strict=strict)
