"""The cached reads of articles: one article, a list page, a feed page.

- An article: its viewer-independent view in Redis (``article:<slug>``) and memory; an
  anonymous reader gets the rendering kept beside that very view, a signed-in reader the
  view with the flags of their marks (as on a list page), so a favorite or follow shows
  at once.
- An anonymous list page: rendered once per change per process, kept in memory under
  its filters and under the query string it was asked with (found again without parsing
  or validation: it passed both when it was kept).
- A signed-in list page or feed page: the same page with the viewer's marks (favorites
  and follows, kept in memory), rendered again only when the page or the marks change.
  A viewer with more than ``MAX_MARKS`` of either has a page's flags looked up instead.

What drops each of them is ``stale``'s table; the names are ``keys``'.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from quill import wire
from quill.db import autocommit
from quill.domain import articles
from quill.domain.article_input import ArticleQuery
from quill.domain.values import Article
from quill.errors import NotFoundError
from quill.reads import keys, store

__all__ = ["MAX_MARKS", "article", "article_list", "feed", "find_article", "follows"]

# Everything a viewer favorited and follows is kept in memory up to this many of each.
MAX_MARKS = 1000


def _to_view(row: dict[str, Any]) -> dict[str, Any]:
    view = dict(row)
    view["created_at"] = row["created_at"].isoformat()
    view["updated_at"] = row["updated_at"].isoformat()
    return view


def _from_view(view: dict[str, Any]) -> dict[str, Any]:
    row = dict(view)
    row["created_at"] = datetime.fromisoformat(view["created_at"])
    row["updated_at"] = datetime.fromisoformat(view["updated_at"])
    return row


def _as_anonymous(view: dict[str, Any]) -> Article:
    return articles.from_row(_from_view(view), favorited=False, following=False)


def _article_json(value: Article) -> bytes:
    return orjson.dumps(wire.article(value))


async def article(slug: str, viewer_id: int | None) -> bytes:
    """The article as ``viewer_id`` reads it. The most frequent read, an anonymous one of
    a cached view, skips building the article and encoding it again; a signed-in one of a
    cached view takes its flags from the viewer's marks, as a list page does."""
    store.start()
    name = keys.article_key(slug)
    view, tombstone = await store.load_view(name)
    if view is None:
        return _article_json(await _article(slug, viewer_id, name, view, tombstone))
    if viewer_id is None:
        return store.rendered(name, view, lambda: _article_json(_as_anonymous(view)))
    return await _flag_article(slug, name, view, viewer_id)


async def _flag_article(slug: str, name: str, view: dict[str, Any], viewer_id: int) -> bytes:
    """A cached ``view`` with ``viewer_id``'s flags from their marks, kept while the view and
    the marks are the very objects this process holds (a change to either renders again).
    A viewer with too many marks to keep has the flags read from PostgreSQL."""
    marks = await _marks(viewer_id)
    if marks == b"null":
        return _article_json(await _article(slug, viewer_id, name, view))
    held_name = keys.viewer_article_key(viewer_id, slug)
    if (body := store.held(held_name, view, marks)) is not None:
        return body
    epoch = store.near.epoch
    mine = orjson.loads(marks)
    row = _from_view(view)
    shown = articles.from_row(
        row, favorited=row["slug"] in mine["favorited"], following=row["username"] in mine["following"]
    )
    body = _article_json(shown)
    store.keep(held_name, body, view, marks, epoch=epoch)
    return body


async def find_article(slug: str, viewer_id: int | None) -> Article:
    """The article as ``viewer_id`` reads it, or 404."""
    store.start()
    name = keys.article_key(slug)
    return await _article(slug, viewer_id, name, *await store.load_view(name))


async def _article(
    slug: str, viewer_id: int | None, name: str, view: dict[str, Any] | None, tombstone: bytes | None = None
) -> Article:
    """The article for this viewer, given its cache key and the cached view (``None`` on a
    miss, with the tombstone found in its place, if any)."""
    if view is not None and viewer_id is None:  # the common read: Redis alone
        return _as_anonymous(view)
    async with autocommit() as conn:
        if view is None:
            row = await articles.one(conn, slug)
            if row is None:
                raise NotFoundError({"article": ["not found"]})
            await store.store_view(name, _to_view(row), tombstone)
        else:
            row = _from_view(view)
        if viewer_id is None:
            return articles.from_row(row, favorited=False, following=False)
        flags = await articles.flags_for(conn, viewer_id, row["id"])
    if flags is None:  # deleted since it was cached: the view is stale
        await store.invalidate([name])
        raise NotFoundError({"article": ["not found"]})
    return articles.from_row(row, favorited=flags["favorited"], following=flags["following"])


async def article_list(query_string: bytes, parse: Callable[[], ArticleQuery], viewer_id: int | None) -> bytes:
    """The page asked for by ``query_string`` (``parse`` reads and validates it), as
    ``viewer_id`` reads it: the page every reader gets, with this viewer's flags."""
    store.start()
    shown = store.recall(keys.list_asked_key(query_string))
    if not isinstance(shown, bytes):
        shown = await _anonymous_page(query_string, parse())
    if viewer_id is not None:
        return await _flag_page(shown, viewer_id, query_string)
    return shown


async def _anonymous_page(query_string: bytes, query: ArticleQuery) -> bytes:
    """Rendered once per change, and kept under the query string it was asked with too.
    Both names are under the lists' prefix, so a write drops both."""

    async def render() -> bytes:
        found, total = await articles.list_articles(query, None)
        return orjson.dumps(wire.article_list(found, total))

    filters = orjson.dumps([query.tag, query.author, query.favorited, query.q, query.limit, query.offset])
    return await store.shared(keys.list_key(filters.decode()), render, alias=keys.list_asked_key(query_string))


async def _flag_page(page: bytes, viewer_id: int, query_string: bytes) -> bytes:
    """An anonymous ``page`` with ``viewer_id``'s ``favorited`` and ``following`` flags,
    kept while the page and the viewer's marks are the very objects this process holds:
    a new page or new marks (after any write that changes either) render again."""
    marks = await _marks(viewer_id)
    if marks == b"null":
        return _flagged(page, await _page_marks(viewer_id, orjson.loads(page)["articles"]))
    name = keys.viewer_page_key(viewer_id, query_string)
    if (body := store.held(name, page, marks)) is not None:
        return body
    epoch = store.near.epoch
    body = _flagged(page, orjson.loads(marks))
    store.keep(name, body, page, marks, epoch=epoch)
    return body


async def feed(viewer_id: int, limit: int, offset: int) -> bytes:
    """A viewer's feed page, kept while the viewer's marks are the very object this process
    holds (a follow or a favorite renders again), and dropped with the lists by any write
    that changes what a page shows; built every time for a viewer with too many marks.
    Readers of a page being built wait for that build: a page that expired is one query."""
    store.start()

    async def render() -> bytes:
        found, total = await articles.feed(viewer_id, limit, offset)
        return orjson.dumps(wire.article_list(found, total))

    marks = await _marks(viewer_id)
    if marks == b"null":
        return await render()
    return await store.shared(keys.viewer_feed_key(viewer_id, limit, offset), render, made_from=(marks,))


async def follows(viewer_id: int, username: str) -> bool | None:
    """Whether the viewer follows ``username``, from their marks in memory (a signed-in
    profile read); ``None`` for a viewer with too many marks to keep: ask PostgreSQL."""
    marks = await _marks(viewer_id)
    if marks == b"null":
        return None
    following: list[str] = orjson.loads(marks)["following"]
    return username in following


async def _marks(viewer_id: int) -> bytes:
    """The viewer's favorites and follows, encoded, built once per change; ``null`` if too
    many to keep."""
    return await store.shared(keys.viewer_key(viewer_id), functools.partial(_all_marks, viewer_id))


async def _all_marks(viewer_id: int) -> bytes:
    favorited, following = await articles.marks(viewer_id, MAX_MARKS + 1)
    if len(favorited) > MAX_MARKS or len(following) > MAX_MARKS:
        return b"null"
    return orjson.dumps({"favorited": favorited, "following": following})


async def _page_marks(viewer_id: int, shown: list[dict[str, Any]]) -> dict[str, list[str]]:
    slugs = [article["slug"] for article in shown]
    authors = list({article["author"]["username"] for article in shown})
    favorited, following = await articles.page_marks(viewer_id, slugs, authors)
    return {"favorited": favorited, "following": following}


def _flagged(page: bytes, marks: dict[str, list[str]]) -> bytes:
    document = orjson.loads(page)
    favorited, following = set(marks["favorited"]), set(marks["following"])
    for shown in document["articles"]:
        shown["favorited"] = shown["slug"] in favorited
        shown["author"]["following"] = shown["author"]["username"] in following
    return orjson.dumps(document)
