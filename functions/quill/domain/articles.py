"""Articles, their tags and favorites. Owns ``articles``, ``article_tags`` and ``favorites``.

A page of articles is built by ``pages`` (its SQL; ``page_sql`` is re-exported here for
the benchmark). A single article's
viewer-independent view is cached under ``article:<slug>``; the viewer's flags are
read from PostgreSQL in one small query, so a favorite or follow shows at once.
"""

from __future__ import annotations

import functools
import re
import secrets
import unicodedata
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg.errors
from psycopg import sql

from quill import cache, events
from quill.db import Connection, connection, reading
from quill.domain import fields as f
from quill.domain import views
from quill.domain.outbox import Transaction, transaction
from quill.domain.pages import VIEWER_FLAGS, fetch_page, page_sql
from quill.domain.values import Article, Profile
from quill.domain.views import article_key
from quill.errors import ApiError, Forbidden, NotFound
from quill.wire import timestamp as wire_time

__all__ = [
    "ArticleChanges",
    "ArticleQuery",
    "ImportRequest",
    "NewArticle",
    "anonymous",
    "author_id",
    "check_owner",
    "create",
    "delete",
    "favorite",
    "feed",
    "feed_page",
    "flag_page",
    "get",
    "id_of",
    "insert",
    "list_articles",
    "page_sql",
    "parse_changes",
    "parse_import",
    "parse_new",
    "read_changes",
    "slugify",
    "tags",
    "unfavorite",
    "update",
]

_EMITTER = "posts"

_ONE = """
SELECT a.id, a.slug, a.title, a.description, a.body, a.tag_list, a.created_at, a.updated_at,
       a.favorites_count, a.author_id, u.username, u.bio, u.image
FROM articles a JOIN users u ON u.id = a.author_id
WHERE a.slug = %s
"""
_FLAGS_FOR = (
    sql.SQL("SELECT{flags}FROM articles a WHERE a.id = %(article_id)s").format(flags=VIEWER_FLAGS).as_string(None)
)
# FOR KEY SHARE: a favorite or comment being added holds the article until it commits,
# so a concurrent delete waits instead of breaking the foreign key.
_LOCATE = "SELECT id, author_id FROM articles WHERE slug = %s FOR KEY SHARE"
_LOCATE_FOR_UPDATE = "SELECT id, author_id, slug, title FROM articles WHERE slug = %s FOR UPDATE"

# What a write hands back: the article as its writer now reads it (author and flags
# included), so the response needs no second read; ``author_username`` is for the event.
_WRITTEN = sql.SQL("""
    a.id, a.slug, a.title, a.description, a.body, a.tag_list, a.created_at, a.updated_at,
    a.favorites_count, a.author_id, u.username, u.bio, u.image, u.username AS author_username,{flags}""").format(
    flags=VIEWER_FLAGS
)
_INSERT = (
    sql.SQL("""
WITH a AS (
    INSERT INTO articles (slug, author_id, title, description, body, tag_list, created_at, updated_at)
    VALUES (%(slug)s, %(author_id)s, %(title)s, %(description)s, %(body)s, %(tag_list)s,
            coalesce(%(created_at)s, date_trunc('milliseconds', clock_timestamp())),
            coalesce(%(updated_at)s, %(created_at)s, date_trunc('milliseconds', clock_timestamp())))
    ON CONFLICT (slug) DO NOTHING
    RETURNING *
)
SELECT{written}FROM a JOIN users u ON u.id = a.author_id""")
    .format(written=_WRITTEN)
    .as_string(None)
)
_INSERT_TAGS = (
    "INSERT INTO article_tags (article_id, tag, created_at)"
    " SELECT a.id, unnest(%s::text[]), a.created_at FROM articles a WHERE a.id = %s"
)
_DELETE_TAGS = "DELETE FROM article_tags WHERE article_id = %s"
_UPDATE = (
    sql.SQL("""
UPDATE articles a SET
    slug = %(slug)s,
    title = coalesce(%(title)s, a.title),
    description = coalesce(%(description)s, a.description),
    body = coalesce(%(body)s, a.body),
    tag_list = coalesce(%(tag_list)s, a.tag_list),
    updated_at = greatest(date_trunc('milliseconds', clock_timestamp()), a.updated_at + interval '1 millisecond')
FROM users u
WHERE a.id = %(article_id)s AND u.id = a.author_id
RETURNING{written}""")
    .format(written=_WRITTEN)
    .as_string(None)
)
# A favorite's answer, read in its own transaction (the count and flags as just changed).
_READ_BACK = (
    sql.SQL("SELECT{written}FROM articles a JOIN users u ON u.id = a.author_id WHERE a.id = %(article_id)s")
    .format(written=_WRITTEN)
    .as_string(None)
)
_DELETE = "DELETE FROM articles WHERE id = %s RETURNING id, slug, author_id"
_FAVORITE = """
WITH added AS (
    INSERT INTO favorites (user_id, article_id) VALUES (%(viewer)s, %(article_id)s)
    ON CONFLICT DO NOTHING RETURNING article_id
)
UPDATE articles SET favorites_count = favorites_count + 1 WHERE id IN (SELECT article_id FROM added)
RETURNING favorites_count, (SELECT username FROM users WHERE id = %(viewer)s) AS username
"""
_UNFAVORITE = """
WITH removed AS (
    DELETE FROM favorites WHERE user_id = %(viewer)s AND article_id = %(article_id)s RETURNING article_id
)
UPDATE articles SET favorites_count = favorites_count - 1 WHERE id IN (SELECT article_id FROM removed)
RETURNING favorites_count, (SELECT username FROM users WHERE id = %(viewer)s) AS username
"""
# The viewer's flags for one page, by the slugs and usernames the page shows: both
# looked up by unique index, at most 20 of each.
_PAGE_FLAGS = """
SELECT
    ARRAY(SELECT a.slug FROM articles a JOIN favorites fv ON fv.article_id = a.id AND fv.user_id = %(viewer)s
          WHERE a.slug = ANY(%(slugs)s)) AS favorited,
    ARRAY(SELECT u.username FROM users u JOIN follows fo ON fo.followee_id = u.id AND fo.follower_id = %(viewer)s
          WHERE u.username = ANY(%(authors)s)) AS following
"""
# Everything the viewer favorited and follows, up to MAX_MARKS each (kept in memory).
MAX_MARKS = 1000
_ALL_MARKS = """
SELECT
    ARRAY(SELECT a.slug FROM favorites fv JOIN articles a ON a.id = fv.article_id
          WHERE fv.user_id = %(viewer)s LIMIT %(limit)s) AS favorited,
    ARRAY(SELECT u.username FROM follows fo JOIN users u ON u.id = fo.followee_id
          WHERE fo.follower_id = %(viewer)s LIMIT %(limit)s) AS following
"""
_TAGS = "SELECT tag FROM tag_totals GROUP BY tag HAVING sum(articles) > 0 ORDER BY sum(articles) DESC, tag"


@dataclass(frozen=True)
class NewArticle:
    title: str
    description: str
    body: str
    tag_list: tuple[str, ...]
    created_at: datetime | None = None  # only imports keep an original time
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ArticleChanges:
    title: str | f.Unset = f.UNSET
    description: str | f.Unset = f.UNSET
    body: str | f.Unset = f.UNSET
    tag_list: tuple[str, ...] | f.Unset = f.UNSET


@dataclass(frozen=True)
class ArticleQuery:
    tag: str | None = None
    author: str | None = None
    favorited: str | None = None
    q: str | None = None
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class ImportRequest:
    author: str
    article: NewArticle


def _moment(fields: f.Fields, data: dict[str, Any], name: str) -> datetime | None:
    raw = data.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        fields.fail(name, "must be an ISO 8601 date-time with a time zone")
        return None
    return moment


def parse_import(data: dict[str, Any]) -> ImportRequest:
    """An article-import request: the article fields, the author's username, original times."""
    fields = f.Fields(data)
    author = fields.required("author", 64)
    tag_list = fields.tags("tagList")
    created_at = _moment(fields, data, "createdAt")
    updated_at = _moment(fields, data, "updatedAt")
    if created_at and updated_at and updated_at < created_at:
        fields.fail("updatedAt", "must not be before createdAt")
    article = NewArticle(
        title=fields.required("title", 256, line=True),
        description=fields.required("description", 1024),
        body=fields.required("body", 200_000),
        tag_list=() if isinstance(tag_list, f.Unset) else tag_list,
        created_at=created_at,
        updated_at=updated_at,
    )
    fields.done()
    return ImportRequest(author, article)


async def author_id(conn: Connection, username: str) -> int | None:
    row = await (await conn.execute("SELECT id FROM users WHERE username = %s", (username,))).fetchone()
    return int(row["id"]) if row else None


def parse_new(data: dict[str, Any]) -> NewArticle:
    fields = f.Fields(data)
    tag_list = fields.tags("tagList")
    article = NewArticle(
        title=fields.required("title", 256, line=True),
        description=fields.required("description", 1024),
        body=fields.required("body", 200_000),
        tag_list=() if isinstance(tag_list, f.Unset) else tag_list,
    )
    fields.done()
    return article


def parse_changes(data: dict[str, Any]) -> ArticleChanges:
    fields = f.Fields(data)
    changes = ArticleChanges(
        title=fields.changed("title", 256, line=True),
        description=fields.changed("description", 1024),
        body=fields.changed("body", 200_000),
        tag_list=fields.tags("tagList"),
    )
    fields.done()
    return changes


def slugify(title: str) -> str:
    """Lower-case words joined by dashes; letters of every script are kept."""
    normal = unicodedata.normalize("NFKC", title).lower()
    slug = re.sub(r"[^\w]+|_+", "-", normal).strip("-")[:80].strip("-")
    return slug or "article"


def _event_data(row: dict[str, Any], previous_slug: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row["id"],
        "slug": row["slug"],
        "title": row["title"],
        "description": row["description"],
        "tagList": list(row["tag_list"]),
        "author": {"id": row["author_id"], "username": row["author_username"]},
        "createdAt": wire_time(row["created_at"]),
        "updatedAt": wire_time(row["updated_at"]),
    }
    if previous_slug is not None:
        data["previousSlug"] = previous_slug
    return data


def _from_row(row: dict[str, Any], *, favorited: bool, following: bool) -> Article:
    return Article(
        id=row["id"],
        slug=row["slug"],
        title=row["title"],
        description=row["description"],
        body=row.get("body"),
        tag_list=tuple(row["tag_list"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        favorited=favorited,
        favorites_count=row["favorites_count"],
        author_id=row["author_id"],
        author=Profile(row["username"], row["bio"], row["image"], following),
    )


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


def _candidates(base: str) -> Iterator[str]:
    """The plain slug first (never ``feed``), then the same with a random suffix."""
    if base != "feed":
        yield base
    for _ in range(8):
        yield f"{base}-{secrets.token_hex(3)}"


def _keeps_slug(base: str, current: str) -> bool:
    return current == base or re.fullmatch(re.escape(base) + r"-[0-9a-f]{6}", current) is not None


async def _with_free_slug(conn: Connection, base: str, statement: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run an INSERT/UPDATE that sets ``slug``, moving to the next candidate if it is taken.

    Each try is a savepoint, so losing a race with a concurrent writer costs one retry.
    """
    for slug in _candidates(base):
        try:
            async with conn.transaction():
                row = await (await conn.execute(statement, {**params, "slug": slug})).fetchone()
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name != "articles_slug_key":
                raise
            continue
        if row is None:
            raise NotFound({"article": ["not found"]})
        return row
    raise RuntimeError(f"no free slug for {base!r} after 9 attempts")


async def _insert_with_free_slug(conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
    """Insert under the first free slug candidate. A taken slug inserts nothing (``ON
    CONFLICT DO NOTHING``) rather than failing, so no savepoint is needed around each try:
    two round trips fewer than ``_with_free_slug``."""
    for slug in _candidates(params["slug"]):
        row = await (await conn.execute(_INSERT, {**params, "slug": slug})).fetchone()
        if row is not None:
            return row
    raise RuntimeError(f"no free slug for {params['slug']!r} after 9 attempts")


async def insert(tx: Transaction, author_id: int, new: NewArticle) -> Article:
    """Store a new article inside ``tx`` (emitting ``article.created``) and return it as
    its author reads it."""
    params: dict[str, Any] = {
        "slug": slugify(new.title),
        "author_id": author_id,
        "viewer": author_id,
        "title": new.title,
        "description": new.description,
        "body": new.body,
        "tag_list": list(new.tag_list),
        "created_at": new.created_at,
        "updated_at": new.updated_at,
    }
    row = await _insert_with_free_slug(tx.conn, params)
    if new.tag_list:
        await tx.conn.execute(_INSERT_TAGS, (list(new.tag_list), row["id"]))
    await tx.emit(events.ARTICLE_CREATED, row["id"], _event_data(row))
    return _written(row)


def _written(row: dict[str, Any]) -> Article:
    return _from_row(row, favorited=row["favorited"], following=row["following"])


async def create(author_id: int, new: NewArticle) -> Article:
    """The new article, from the statement that stored it: one transaction, no read back."""
    async with transaction(_EMITTER) as tx:
        return await insert(tx, author_id, new)


async def get(slug: str, viewer_id: int | None) -> Article:
    name = article_key(slug)
    return await _get(slug, viewer_id, name, await cache.load_view(name))


def _as_anonymous(view: dict[str, Any]) -> Article:
    return _from_row(_from_view(view), favorited=False, following=False)


async def _get(slug: str, viewer_id: int | None, name: str, view: dict[str, Any] | None) -> Article:
    """The article for this viewer, given its cache key and the cached view (``None`` on a miss)."""
    if view is not None and viewer_id is None:  # the common read: Redis alone
        return _as_anonymous(view)
    async with reading() as conn:
        if view is None:
            row = await (await conn.execute(_ONE, (slug,))).fetchone()
            if row is None:
                raise NotFound({"article": ["not found"]})
            await cache.store_view(name, _to_view(row))
        else:
            row = _from_view(view)
        if viewer_id is None:
            return _from_row(row, favorited=False, following=False)
        flags = await (await conn.execute(_FLAGS_FOR, {"viewer": viewer_id, "article_id": row["id"]})).fetchone()
    if flags is None:  # deleted since it was cached: the view is stale
        await views.drop_articles(slug)
        raise NotFound({"article": ["not found"]})
    return _from_row(row, favorited=flags["favorited"], following=flags["following"])


async def anonymous(slug: str, render: Callable[[Article], bytes]) -> bytes:
    """The article as an anonymous reader gets it, ``render``ed once per cached view:
    the most frequent read skips building the article and encoding it again."""
    name = article_key(slug)
    view = await cache.load_view(name)
    if view is None:  # a miss: read and cache the article, render it this once
        return render(await _get(slug, None, name, None))
    return cache.rendered(name, view, lambda: render(_as_anonymous(view)))


async def id_of(conn: Connection, slug: str) -> tuple[int, int]:
    """``(article_id, author_id)`` of a slug, or 404."""
    row = await (await conn.execute(_LOCATE, (slug,))).fetchone()
    if row is None:
        raise NotFound({"article": ["not found"]})
    return int(row["id"]), int(row["author_id"])


async def _locate_own(conn: Connection, slug: str, user_id: int) -> dict[str, Any]:
    row = await (await conn.execute(_LOCATE_FOR_UPDATE, (slug,))).fetchone()
    if row is None:
        raise NotFound({"article": ["not found"]})
    if row["author_id"] != user_id:
        raise Forbidden({"article": ["forbidden"]})
    return row


async def check_owner(slug: str, user_id: int) -> None:
    """404 or 403 before a body is even read, as the error precedence requires."""
    async with connection() as conn:
        await _locate_own(conn, slug, user_id)


async def read_changes(slug: str, user_id: int, body: Awaitable[dict[str, Any]]) -> ArticleChanges:
    """The changes a request ``body`` asks for. An article that is missing or not the
    caller's answers 404 or 403 before anything wrong with the body does (the error
    precedence); ``update`` checks that in its own transaction, so a read of its own is
    spent only on a body that fails."""
    try:
        return parse_changes(await body)
    except ApiError:
        await check_owner(slug, user_id)
        raise


async def update(slug: str, user_id: int, changes: ArticleChanges) -> Article:
    """Apply ``changes`` by the article's author; a new title gets a new slug. Returns the
    article as the author now reads it, from the UPDATE itself."""
    async with transaction(_EMITTER) as tx:
        row = await _locate_own(tx.conn, slug, user_id)
        base = row["slug"]
        if isinstance(changes.title, str) and not _keeps_slug(slugify(changes.title), row["slug"]):
            base = slugify(changes.title)
        tag_list = None if isinstance(changes.tag_list, f.Unset) else list(changes.tag_list)
        params = {
            "article_id": row["id"],
            "title": None if isinstance(changes.title, f.Unset) else changes.title,
            "description": None if isinstance(changes.description, f.Unset) else changes.description,
            "body": None if isinstance(changes.body, f.Unset) else changes.body,
            "tag_list": tag_list,
            "viewer": user_id,
        }
        if base == row["slug"]:
            updated = await (await tx.conn.execute(_UPDATE, {**params, "slug": base})).fetchone()
        else:
            updated = await _with_free_slug(tx.conn, base, _UPDATE, params)
        if updated is None:
            raise NotFound({"article": ["not found"]})
        new_slug = updated["slug"]
        if tag_list is not None:
            await tx.conn.execute(_DELETE_TAGS, (row["id"],))
            if tag_list:
                await tx.conn.execute(_INSERT_TAGS, (tag_list, row["id"]))
        await tx.emit(events.ARTICLE_UPDATED, row["id"], _event_data(updated, previous_slug=row["slug"]))
        tx.stale |= views.article_keys(slug, str(new_slug))
    return _written(updated)


async def delete(slug: str, user_id: int) -> None:
    async with transaction(_EMITTER) as tx:
        row = await _locate_own(tx.conn, slug, user_id)
        await tx.conn.execute(_DELETE, (row["id"],))
        await tx.emit(
            events.ARTICLE_DELETED, row["id"], {"id": row["id"], "slug": row["slug"], "author": {"id": user_id}}
        )
        tx.stale |= views.article_keys(slug)


async def _favor(statement: str, event: str, slug: str, viewer_id: int) -> Article:
    """Favorite or unfavorite; an event only when the favorite really changed. Returns the
    article as the viewer now reads it, read in the same transaction."""
    async with transaction(_EMITTER) as tx:
        article_id, _ = await id_of(tx.conn, slug)
        params = {"viewer": viewer_id, "article_id": article_id}
        changed = await (await tx.conn.execute(statement, params)).fetchone()
        if changed is not None:
            await tx.emit(
                event,
                article_id,
                {
                    "article": {"id": article_id, "slug": slug},
                    "user": {"id": viewer_id, "username": changed["username"]},
                    "favoritesCount": changed["favorites_count"],
                },
            )
        row = await (await tx.conn.execute(_READ_BACK, params)).fetchone()
        assert row is not None  # the article is held FOR KEY SHARE since id_of
        tx.stale |= views.article_keys(slug)
    return _written(row)


async def favorite(slug: str, viewer_id: int) -> Article:
    return await _favor(_FAVORITE, events.ARTICLE_FAVORITED, slug, viewer_id)


async def unfavorite(slug: str, viewer_id: int) -> Article:
    return await _favor(_UNFAVORITE, events.ARTICLE_UNFAVORITED, slug, viewer_id)


async def _page(params: dict[str, Any]) -> tuple[list[Article], int]:
    async with reading() as conn:
        rows, total = await fetch_page(conn, params)
    return [_from_row(row, favorited=row["favorited"], following=row["following"]) for row in rows], total


async def list_articles(query: ArticleQuery, viewer_id: int | None) -> tuple[list[Article], int]:
    """A page of articles, newest first, and the number of all that match; a search (``q``)
    ranks its newest matches by relevance and counts those (``pages.fetch_page``)."""
    return await _page(
        {
            "tag": query.tag,
            "author": query.author,
            "favorited": query.favorited,
            "q": query.q,
            "feed_of": None,
            "viewer": viewer_id,
            "limit": query.limit,
            "offset": query.offset,
        }
    )


async def flag_page(page: bytes, viewer_id: int, query_string: bytes) -> bytes:
    """An anonymous list ``page`` (rendered) as ``viewer_id`` reads it: the same articles
    with their ``favorited`` and ``following`` flags. The page comes from memory
    (``views.anonymous_list``), built once per change for every reader, and so do the
    viewer's favorites and follows (``views.viewer_marks``), dropped by the writes that
    change them: a favorite or follow shows in the very next read. A viewer with more
    than ``MAX_MARKS`` of either has the page's flags looked up instead."""
    marks = await _marks(viewer_id)
    if marks == b"null":
        return _flagged(page, await _page_marks(viewer_id, orjson.loads(page)["articles"]))
    return views.viewer_page(viewer_id, query_string, page, marks, lambda: _flagged(page, orjson.loads(marks)))


async def feed_page(viewer_id: int, limit: int, offset: int, render: Callable[[], Awaitable[bytes]]) -> bytes:
    """The viewer's feed as ``render`` builds it, from memory between the writes that change
    it (``views.viewer_feed``); built every time for a viewer with too many marks to keep."""
    marks = await _marks(viewer_id)
    if marks == b"null":
        return await render()
    return await views.viewer_feed(viewer_id, limit, offset, marks, render)


async def _marks(viewer_id: int) -> bytes:
    """The viewer's favorites and follows, from memory (``views.viewer_marks``); ``null`` if too many to keep."""
    return await views.viewer_marks(viewer_id, functools.partial(_all_marks, viewer_id))


def _flagged(page: bytes, marks: dict[str, list[str]]) -> bytes:
    document = orjson.loads(page)
    favorited, following = set(marks["favorited"]), set(marks["following"])
    for article in document["articles"]:
        article["favorited"] = article["slug"] in favorited
        article["author"]["following"] = article["author"]["username"] in following
    return orjson.dumps(document)


async def _all_marks(viewer_id: int) -> bytes:
    """The viewer's marks, encoded for ``views.viewer_marks``; ``null`` if too many to keep."""
    async with reading() as conn:
        row = await (await conn.execute(_ALL_MARKS, {"viewer": viewer_id, "limit": MAX_MARKS + 1})).fetchone()
    assert row is not None  # a SELECT of two arrays always answers one row
    if len(row["favorited"]) > MAX_MARKS or len(row["following"]) > MAX_MARKS:
        return b"null"
    return orjson.dumps({"favorited": row["favorited"], "following": row["following"]})


async def _page_marks(viewer_id: int, shown: list[dict[str, Any]]) -> dict[str, list[str]]:
    params = {
        "viewer": viewer_id,
        "slugs": [article["slug"] for article in shown],
        "authors": list({article["author"]["username"] for article in shown}),
    }
    async with reading() as conn:
        row = await (await conn.execute(_PAGE_FLAGS, params)).fetchone()
    assert row is not None
    return {"favorited": row["favorited"], "following": row["following"]}


async def feed(viewer_id: int, limit: int, offset: int) -> tuple[list[Article], int]:
    """Articles by the authors the viewer follows, newest first."""
    return await _page(
        {
            "tag": None,
            "author": None,
            "favorited": None,
            "q": None,
            "feed_of": viewer_id,
            "viewer": viewer_id,
            "limit": limit,
            "offset": offset,
        }
    )


async def tags() -> list[str]:
    """Every tag in use, most used first."""
    async with reading() as conn:
        rows = await (await conn.execute(_TAGS)).fetchall()
    return [row["tag"] for row in rows]
