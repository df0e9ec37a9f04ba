"""The cached views and which writes make them stale: the one place that names the keys.

The write paths drop what they changed right after commit (read-your-writes); the
``cache`` event function drops the same keys again from the events, so a view left
stale by a Redis blip during a write is still dropped once Redis answers.
"""

from __future__ import annotations

import orjson

from quill import cache
from quill.db import Connection

__all__ = [
    "LISTS_VERSION",
    "article_key",
    "author_views",
    "drop",
    "drop_articles",
    "drop_author",
    "drop_lists",
    "list_key",
    "profile_key",
]

_SLUGS_OF_AUTHOR = "SELECT slug FROM articles WHERE author_id = %s"


# The counter every cached list page's key carries; a bulk load outside the API (the
# benchmark's seeder) bumps it too.
LISTS_VERSION = ("lists", "version")


def _lists_version() -> str:
    return cache.key(*LISTS_VERSION)


async def list_key(filters: list[str | int | None]) -> str | None:
    """The key of an anonymous list page under the current lists version; None when Redis
    is away (the page is then read from PostgreSQL and not stored).

    Any write that could change any list bumps the version after its commit, so a page
    stored from an older read lands under a version nobody asks for any more."""
    version = await cache.load_counter(_lists_version())
    if version is None:
        return None
    return cache.key("list", version, orjson.dumps(filters).decode())


async def drop(names: set[str], *, strict: bool = False) -> None:
    """Drop these views, and every cached list (each may show what changed)."""
    await cache.invalidate(names, bump=[_lists_version()], strict=strict)


async def drop_lists(*, strict: bool = False) -> None:
    await drop(set(), strict=strict)


def profile_key(username: str) -> str:
    return cache.key("profile", username)


def article_key(slug: str) -> str:
    return cache.key("article", slug)


async def drop_articles(*slugs: str, strict: bool = False) -> None:
    await drop({article_key(slug) for slug in slugs if slug}, strict=strict)


async def author_views(conn: Connection, user_id: int, *usernames: str) -> set[str]:
    """The keys a profile change makes stale: the profile under every name it had, and every
    article that embeds it. Read inside the writer's transaction, dropped after its commit."""
    rows = await (await conn.execute(_SLUGS_OF_AUTHOR, (user_id,))).fetchall()
    return {profile_key(name) for name in usernames if name} | {article_key(row["slug"]) for row in rows}


async def drop_author(conn: Connection, user_id: int, *usernames: str, strict: bool = False) -> None:
    await drop(await author_views(conn, user_id, *usernames), strict=strict)
