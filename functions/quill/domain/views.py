"""The cached views and which writes make them stale: the one place that names the keys.

The write paths drop what they changed right after commit (read-your-writes); the
``cache`` event function drops the same keys again from the events, so a view left
stale by a Redis blip during a write is still dropped once Redis answers.

Anonymous list pages are kept only in each process's memory (``cache.shared``): every
committed transaction that emitted one of ``LIST_CHANGES`` drops all of them, together
with the views it named in ``Transaction.stale``, in one call.

A signed-in reader's favorites and follows (``viewer_marks``, by slug and username: what
a page shows) are kept the same way and under the same prefix, so every change that
drops the pages (a favorite, a new slug, a deleted article, a new username) drops them
too; a follow or unfollow drops its follower's by name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import cast

import orjson

from quill import cache, events
from quill.db import Connection

__all__ = [
    "LIST_CHANGES",
    "anonymous_list",
    "article_key",
    "article_keys",
    "author_views",
    "drop",
    "drop_articles",
    "held_list",
    "profile_key",
    "user_key",
    "user_view",
    "viewer_feed",
    "viewer_key",
    "viewer_marks",
    "viewer_page",
]

# What an anonymous list page shows: the articles, their favorite counts and their authors.
LIST_CHANGES = frozenset(
    {
        events.ARTICLE_CREATED,
        events.ARTICLE_UPDATED,
        events.ARTICLE_DELETED,
        events.ARTICLE_FAVORITED,
        events.ARTICLE_UNFAVORITED,
        events.USER_UPDATED,
    }
)

_SLUGS_OF_AUTHOR = "SELECT slug FROM articles WHERE author_id = %s"


def profile_key(username: str) -> str:
    return cache.key("profile", username)


def article_key(slug: str) -> str:
    return cache.key("article", slug)


def _lists() -> str:
    return cache.key("list", "")


def _list_asked(query_string: bytes) -> str:
    return _lists() + "?" + query_string.decode("latin-1")


def held_list(query_string: bytes) -> bytes | None:
    """The page an anonymous reader got for this very query string, if this process still
    holds it: no parsing and no validation, which it passed when it was kept."""
    held = cache.recall(_list_asked(query_string))
    return held if isinstance(held, bytes) else None


async def anonymous_list(
    filters: list[str | int | None], render: Callable[[], Awaitable[bytes]], query_string: bytes
) -> bytes:
    """The rendered page an anonymous reader gets for ``filters``, rendered once per change,
    and kept under the query string it was asked with too (``held_list``). Both names are
    under the lists' prefix, so a write drops both."""
    return await cache.shared(_lists() + orjson.dumps(filters).decode(), render, alias=_list_asked(query_string))


def user_key(user_id: int) -> str:
    return cache.key("user", user_id)


async def user_view(user_id: int, build: Callable[[], Awaitable[bytes]]) -> bytes:
    """The signed-in user's own record as ``build`` encodes it, kept in this process's
    memory until an update of that user drops it (here and, by the channel, everywhere)."""
    return await cache.shared(user_key(user_id), build)


def viewer_key(user_id: int) -> str:
    """Under the lists' prefix: dropped with the pages."""
    return _lists() + f"viewer:{user_id}"


async def viewer_marks(user_id: int, build: Callable[[], Awaitable[bytes]]) -> bytes:
    """The viewer's marks (favorites and follows) as ``build`` encodes them, built once per change."""
    return await cache.shared(viewer_key(user_id), build)


def viewer_page(user_id: int, query_string: bytes, page: bytes, marks: bytes, render: Callable[[], bytes]) -> bytes:
    """``render()`` of a page with the viewer's marks, kept while both are the very objects
    this process holds: a new page or new marks (after any write that changes either)
    are new objects, and the next read renders again."""
    name = viewer_key(user_id) + "?" + query_string.decode("latin-1")
    held = cache.recall(name)
    if isinstance(held, tuple) and held[0] is page and held[1] is marks:
        return cast(bytes, held[2])
    body = render()
    cache.near.put(name, (page, marks, body), cache.near.epoch, len(body))
    return body


async def viewer_feed(
    user_id: int, limit: int, offset: int, marks: bytes, build: Callable[[], Awaitable[bytes]]
) -> bytes:
    """A viewer's feed page as ``build`` renders it, kept while ``marks`` (the viewer's
    favorites and follows) are the very object this process holds, so a follow or a
    favorite makes it render again, and dropped with the lists by any write that changes
    what a page shows (a new, changed, deleted or favorited article, a renamed author)."""
    name = viewer_key(user_id) + f"feed?{limit}&{offset}"
    held = cache.recall(name)
    if isinstance(held, tuple) and held[0] is marks:
        return cast(bytes, held[1])
    epoch = cache.near.epoch
    body = await build()
    cache.near.put(name, (marks, body), epoch, len(body))
    return body


async def drop(names: Iterable[str] = (), *, lists: bool = False) -> None:
    """Drop these views and, with ``lists``, every anonymous list page."""
    await cache.invalidate(names, prefixes=[_lists()] if lists else [])


def article_keys(*slugs: str) -> set[str]:
    return {article_key(slug) for slug in slugs if slug}


async def drop_articles(*slugs: str) -> None:
    await drop(article_keys(*slugs))


async def author_views(conn: Connection, user_id: int, *usernames: str) -> set[str]:
    """The keys a profile change makes stale: the profile under every name it had, and every
    article that embeds it. Read inside the writer's transaction, dropped after its commit."""
    rows = await (await conn.execute(_SLUGS_OF_AUTHOR, (user_id,))).fetchall()
    return {profile_key(name) for name in usernames if name} | article_keys(*(row["slug"] for row in rows))
