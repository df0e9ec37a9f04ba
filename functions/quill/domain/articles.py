"""Articles, their tags and favorites. Owns ``articles``, ``article_tags`` and ``favorites``.

The writes (create, import, update, delete, favorite) and the reads' queries, returning
values. Input is parsed by ``article_input``; a list page's SQL is composed by ``pages``;
slugs are made by ``slugs``; what is cached, and when it is dropped, is the read side's
(``quill.reads``).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from psycopg import sql

from quill import events
from quill.db import Connection, autocommit, connection
from quill.domain import fields as f
from quill.domain import slugs
from quill.domain.article_input import ArticleChanges, ArticleQuery, NewArticle, parse_changes
from quill.domain.outbox import Transaction, stored_event, transaction, wire_time_sql
from quill.domain.pages import VIEWER_FLAGS, fetch_page
from quill.domain.values import Article, Profile
from quill.errors import ForbiddenError, NotFoundError, QuillError

__all__ = [
    "check_owner",
    "create",
    "delete",
    "favorite",
    "feed",
    "flags_for",
    "from_row",
    "id_of",
    "insert",
    "list_articles",
    "marks",
    "one",
    "page_marks",
    "read_changes",
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
# An article event's data, built by the statement that stores the event (``stored_event``)
# from the row it wrote (``written``): the shape the schemas in eventing/ give.
_ARTICLE_DATA = sql.SQL("""jsonb_build_object(
    'id', written.id, 'slug', written.slug, 'title', written.title, 'description', written.description,
    'tagList', to_jsonb(written.tag_list),
    'author', jsonb_build_object('id', written.author_id, 'username', written.author_username),
    'createdAt', {created}, 'updatedAt', {updated})""").format(
    created=wire_time_sql("written.created_at"), updated=wire_time_sql("written.updated_at")
)
# A new article and its event, in one statement (so, under ``one_statement``, one round
# trip); its article_tags rows follow by trigger (0008). A taken slug inserts nothing and
# answers no row.
_INSERT = (
    sql.SQL("""
WITH a AS (
    INSERT INTO articles (slug, author_id, title, description, body, tag_list, created_at, updated_at)
    VALUES (%(slug)s, %(author_id)s, %(title)s, %(description)s, %(body)s, %(tag_list)s,
            coalesce(%(created_at)s, date_trunc('milliseconds', clock_timestamp())),
            coalesce(%(updated_at)s, %(created_at)s, date_trunc('milliseconds', clock_timestamp())))
    ON CONFLICT (slug) DO NOTHING
    RETURNING *
), written AS (
    SELECT{written}FROM a JOIN users u ON u.id = a.author_id
), event AS ({event})
SELECT * FROM written LEFT JOIN event ON true""")
    .format(written=_WRITTEN, event=stored_event("written", sql.SQL("written.id::text"), _ARTICLE_DATA))
    .as_string(None)
)
# The author's changes and the event, in one statement (article_tags follow by trigger).
# ``owner_id`` tells a missing article (no row) from someone else's (no ``id``).
_UPDATE = (
    sql.SQL("""
WITH target AS (
    SELECT id, author_id, slug FROM articles WHERE slug = %(current)s FOR UPDATE
), changed AS (
    UPDATE articles a SET
        slug = %(slug)s,
        title = coalesce(%(title)s, a.title),
        description = coalesce(%(description)s, a.description),
        body = coalesce(%(body)s, a.body),
        tag_list = coalesce(%(tag_list)s, a.tag_list),
        updated_at = greatest(date_trunc('milliseconds', clock_timestamp()), a.updated_at + interval '1 millisecond')
    FROM target
    WHERE a.id = target.id AND target.author_id = %(viewer)s
    RETURNING a.*
), written AS (
    SELECT{written}FROM changed a JOIN users u ON u.id = a.author_id
), event AS ({event})
SELECT target.author_id AS owner_id, written.*, event.*
FROM target LEFT JOIN written ON true LEFT JOIN event ON true""")
    .format(
        written=_WRITTEN,
        event=stored_event(
            "written",
            sql.SQL("written.id::text"),
            sql.SQL("{data} || jsonb_build_object('previousSlug', %(current)s::text)").format(data=_ARTICLE_DATA),
        ),
    )
    .as_string(None)
)
_DELETE = "DELETE FROM articles WHERE id = %s RETURNING id, slug, author_id"
# A favorite added or removed, the count moved, and the event, in one statement; the
# answer is the article as the viewer now reads it. No event when nothing changed.
_FAVOR = """
WITH target AS (
    SELECT id FROM articles WHERE slug = %(slug)s FOR KEY SHARE
), marked AS ({mark}
), counted AS (
    UPDATE articles SET favorites_count = favorites_count + {step} WHERE id IN (SELECT article_id FROM marked)
    RETURNING id, slug, favorites_count
), event AS ({event})
SELECT a.id, a.slug, a.title, a.description, a.body, a.tag_list, a.created_at, a.updated_at,
       coalesce(counted.favorites_count, a.favorites_count) AS favorites_count, a.author_id,
       u.username, u.bio, u.image, {favorited} AS favorited,
       EXISTS (SELECT 1 FROM follows fo WHERE fo.followee_id = a.author_id AND fo.follower_id = %(viewer)s)
           AS following,
       event.*
FROM target JOIN articles a ON a.id = target.id JOIN users u ON u.id = a.author_id
LEFT JOIN counted ON true LEFT JOIN event ON true
"""
_FAVOR_DATA = sql.SQL("""jsonb_build_object(
    'article', jsonb_build_object('id', counted.id, 'slug', counted.slug),
    'user', jsonb_build_object(
        'id', %(viewer)s::bigint, 'username', (SELECT username FROM users WHERE id = %(viewer)s)),
    'favoritesCount', counted.favorites_count)""")
_FAVOR_EVENT = stored_event("counted", sql.SQL("counted.id::text"), _FAVOR_DATA)
_FAVORITE = (
    sql.SQL(_FAVOR)
    .format(
        mark=sql.SQL("""
    INSERT INTO favorites (user_id, article_id) SELECT %(viewer)s, id FROM target
    ON CONFLICT DO NOTHING RETURNING article_id"""),
        step=sql.SQL("1"),
        event=_FAVOR_EVENT,
        favorited=sql.SQL("true"),
    )
    .as_string(None)
)
_UNFAVORITE = (
    sql.SQL(_FAVOR)
    .format(
        mark=sql.SQL("""
    DELETE FROM favorites f USING target WHERE f.user_id = %(viewer)s AND f.article_id = target.id
    RETURNING f.article_id"""),
        step=sql.SQL("-1"),
        event=_FAVOR_EVENT,
        favorited=sql.SQL("false"),
    )
    .as_string(None)
)
# The viewer's flags for one page, by the slugs and usernames the page shows: both
# looked up by unique index, at most 20 of each.
_PAGE_FLAGS = """
SELECT
    ARRAY(SELECT a.slug FROM articles a JOIN favorites fv ON fv.article_id = a.id AND fv.user_id = %(viewer)s
          WHERE a.slug = ANY(%(slugs)s)) AS favorited,
    ARRAY(SELECT u.username FROM users u JOIN follows fo ON fo.followee_id = u.id AND fo.follower_id = %(viewer)s
          WHERE u.username = ANY(%(authors)s)) AS following
"""
# Everything the viewer favorited and follows, up to a limit of each.
_ALL_MARKS = """
SELECT
    ARRAY(SELECT a.slug FROM favorites fv JOIN articles a ON a.id = fv.article_id
          WHERE fv.user_id = %(viewer)s LIMIT %(limit)s) AS favorited,
    ARRAY(SELECT u.username FROM follows fo JOIN users u ON u.id = fo.followee_id
          WHERE fo.follower_id = %(viewer)s LIMIT %(limit)s) AS following
"""
_TAGS = "SELECT tag FROM tag_totals GROUP BY tag HAVING sum(articles) > 0 ORDER BY sum(articles) DESC, tag"


def from_row(row: dict[str, Any], *, favorited: bool, following: bool) -> Article:
    """An article from a row of its columns, with the viewer's flags."""
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


async def insert(tx: Transaction, author_id: int, new: NewArticle) -> Article:
    """Store a new article and its ``article.created`` event inside ``tx``, in one statement,
    and return it as its author reads it."""
    params: dict[str, Any] = {
        "slug": slugs.slugify(new.title),
        "author_id": author_id,
        "viewer": author_id,
        "title": new.title,
        "description": new.description,
        "body": new.body,
        "tag_list": list(new.tag_list),
        "created_at": new.created_at,
        "updated_at": new.updated_at,
    }
    params.update(tx.event(events.ARTICLE_CREATED))
    row = await slugs.insert_with_free_slug(tx.conn, _INSERT, params)
    tx.stored(params, row)
    return _written(row)


def _written(row: dict[str, Any]) -> Article:
    return from_row(row, favorited=row["favorited"], following=row["following"])


async def create(author_id: int, new: NewArticle) -> Article:
    """The new article, from the one statement that stored it (and its event): one round
    trip, no read back."""
    async with transaction(_EMITTER, one_statement=True) as tx:
        return await insert(tx, author_id, new)


async def one(conn: Connection, slug: str) -> dict[str, Any] | None:
    """The article's viewer-independent columns (body, author included), or None."""
    return await (await conn.execute(_ONE, (slug,))).fetchone()


async def flags_for(conn: Connection, viewer_id: int, article_id: int) -> dict[str, Any] | None:
    """``{favorited, following}`` of the article for ``viewer_id``; None if it is gone."""
    return await (await conn.execute(_FLAGS_FOR, {"viewer": viewer_id, "article_id": article_id})).fetchone()


async def id_of(conn: Connection, slug: str) -> tuple[int, int]:
    """``(article_id, author_id)`` of a slug, or 404."""
    row = await (await conn.execute(_LOCATE, (slug,))).fetchone()
    if row is None:
        raise NotFoundError({"article": ["not found"]})
    return int(row["id"]), int(row["author_id"])


async def _locate_own(conn: Connection, slug: str, user_id: int) -> dict[str, Any]:
    row = await (await conn.execute(_LOCATE_FOR_UPDATE, (slug,))).fetchone()
    if row is None:
        raise NotFoundError({"article": ["not found"]})
    if row["author_id"] != user_id:
        raise ForbiddenError({"article": ["forbidden"]})
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
    except QuillError:
        await check_owner(slug, user_id)
        raise


async def update(slug: str, user_id: int, changes: ArticleChanges) -> Article:
    """Apply ``changes`` by the article's author, in one statement; a new title gets a new
    slug. Returns the article as the author now reads it, from the UPDATE itself."""
    base = slug
    if isinstance(changes.title, str) and not slugs.keeps_slug(slugs.slugify(changes.title), slug):
        base = slugs.slugify(changes.title)
    async with transaction(_EMITTER, one_statement=True) as tx:
        params = {
            "current": slug,
            "title": None if isinstance(changes.title, f.Unset) else changes.title,
            "description": None if isinstance(changes.description, f.Unset) else changes.description,
            "body": None if isinstance(changes.body, f.Unset) else changes.body,
            "tag_list": None if isinstance(changes.tag_list, f.Unset) else list(changes.tag_list),
            "viewer": user_id,
            **tx.event(events.ARTICLE_UPDATED),
        }
        row = await slugs.with_free_slug(tx.conn, base, _UPDATE, params)
        if row["owner_id"] != user_id:
            raise ForbiddenError({"article": ["forbidden"]})
        tx.stored(params, row)
    return _written(row)


async def delete(slug: str, user_id: int) -> None:
    async with transaction(_EMITTER) as tx:
        row = await _locate_own(tx.conn, slug, user_id)
        await tx.conn.execute(_DELETE, (row["id"],))
        await tx.emit(
            events.ARTICLE_DELETED, row["id"], {"id": row["id"], "slug": row["slug"], "author": {"id": user_id}}
        )


async def _favor(statement: str, event: str, slug: str, viewer_id: int) -> Article:
    """Favorite or unfavorite, in one statement; an event only when the favorite really
    changed. Returns the article as the viewer now reads it."""
    async with transaction(_EMITTER, one_statement=True) as tx:
        params = {"slug": slug, "viewer": viewer_id, **tx.event(event)}
        row = await (await tx.conn.execute(statement, params)).fetchone()
        if row is None:
            raise NotFoundError({"article": ["not found"]})
        tx.stored(params, row)
    return _written(row)


async def favorite(slug: str, viewer_id: int) -> Article:
    return await _favor(_FAVORITE, events.ARTICLE_FAVORITED, slug, viewer_id)


async def unfavorite(slug: str, viewer_id: int) -> Article:
    return await _favor(_UNFAVORITE, events.ARTICLE_UNFAVORITED, slug, viewer_id)


async def _page(params: dict[str, Any]) -> tuple[list[Article], int]:
    async with autocommit() as conn:
        rows, total = await fetch_page(conn, params)
    return [from_row(row, favorited=row["favorited"], following=row["following"]) for row in rows], total


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


async def marks(viewer_id: int, limit: int) -> tuple[list[str], list[str]]:
    """The slugs the viewer favorited and the usernames it follows, up to ``limit`` each."""
    async with autocommit() as conn:
        row = await (await conn.execute(_ALL_MARKS, {"viewer": viewer_id, "limit": limit})).fetchone()
    assert row is not None  # a SELECT of two arrays always answers one row
    return row["favorited"], row["following"]


async def page_marks(viewer_id: int, shown: list[str], authors: list[str]) -> tuple[list[str], list[str]]:
    """Which of the ``shown`` slugs the viewer favorited, and which of ``authors`` it follows."""
    async with autocommit() as conn:
        params = {"viewer": viewer_id, "slugs": shown, "authors": authors}
        row = await (await conn.execute(_PAGE_FLAGS, params)).fetchone()
    assert row is not None
    return row["favorited"], row["following"]


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
    async with autocommit() as conn:
        rows = await (await conn.execute(_TAGS)).fetchall()
    return [row["tag"] for row in rows]
