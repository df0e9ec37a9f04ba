"""Comments on articles. Owns ``comments``."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from quill import events
from quill.db import connection
from quill.domain import fields as f
from quill.domain.articles import id_of
from quill.domain.outbox import stored_event, transaction, wire_time_sql
from quill.domain.values import Comment, Profile
from quill.errors import ForbiddenError, NotFoundError

__all__ = ["add", "delete", "list_for", "parse_id", "parse_new"]

_COLUMNS = """
    c.id, c.body, c.created_at, c.updated_at, u.username, u.bio, u.image,
    EXISTS (SELECT 1 FROM follows fo WHERE fo.followee_id = c.author_id AND fo.follower_id = %(viewer)s)
        AS following
"""
# The comment and its event in one statement (one round trip under ``one_statement``);
# no row when the article is gone. FOR KEY SHARE: a delete of the article waits for it.
_INSERT = (
    sql.SQL("""
WITH target AS (
    SELECT id, slug FROM articles WHERE slug = %(slug)s FOR KEY SHARE
), added AS (
    INSERT INTO comments (article_id, author_id, body) SELECT id, %(viewer)s, %(body)s FROM target
    RETURNING id, body, created_at, updated_at, author_id, article_id
), written AS (
    SELECT c.id, c.body, c.created_at, c.updated_at, c.author_id, c.article_id, target.slug,
           u.username, u.bio, u.image, false AS following
    FROM added c JOIN users u ON u.id = c.author_id JOIN target ON target.id = c.article_id
), event AS ({event})
SELECT * FROM written LEFT JOIN event ON true""")
    .format(
        event=stored_event(
            "written",
            sql.SQL("written.id::text"),
            sql.SQL("""jsonb_build_object(
    'id', written.id, 'article', jsonb_build_object('id', written.article_id, 'slug', written.slug),
    'author', jsonb_build_object('id', written.author_id, 'username', written.username),
    'createdAt', {created})""").format(created=wire_time_sql("written.created_at")),
        )
    )
    .as_string(None)
)
_LIST = (
    "SELECT"
    + _COLUMNS
    + """FROM comments c JOIN users u ON u.id = c.author_id
WHERE c.article_id = %(article_id)s
ORDER BY c.created_at DESC, c.id DESC
"""
)
_LOCATE = "SELECT author_id FROM comments WHERE id = %s AND article_id = %s FOR UPDATE"
_DELETE = "DELETE FROM comments WHERE id = %s"
_EMITTER = "posts"


def parse_new(data: dict[str, Any]) -> str:
    fields = f.Fields(data)
    body = fields.required("body", 20_000)
    fields.done()
    return body


def _comment(row: dict[str, Any]) -> Comment:
    return Comment(
        id=row["id"],
        body=row["body"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        author=Profile(row["username"], row["bio"], row["image"], row["following"]),
    )


async def add(slug: str, viewer_id: int, body: str) -> Comment:
    """The new comment, from the one statement that stored it and its event."""
    async with transaction(_EMITTER, one_statement=True) as tx:
        params = {"slug": slug, "viewer": viewer_id, "body": body, **tx.event(events.COMMENT_CREATED)}
        row = await (await tx.conn.execute(_INSERT, params)).fetchone()
        if row is None:
            raise NotFoundError({"article": ["not found"]})
        tx.stored(params, row)
    return _comment(row)


async def list_for(slug: str, viewer_id: int | None) -> list[Comment]:
    """All comments of an article, newest first."""
    async with connection() as conn:
        article_id, _ = await id_of(conn, slug)
        rows = await (await conn.execute(_LIST, {"article_id": article_id, "viewer": viewer_id})).fetchall()
    return [_comment(row) for row in rows]


def parse_id(raw: str) -> int | None:
    """A comment id from the path; anything that is not a positive integer matches no comment."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


async def delete(slug: str, comment_id: int | None, viewer_id: int) -> None:
    async with transaction(_EMITTER) as tx:
        article_id, _ = await id_of(tx.conn, slug)
        row = None
        if comment_id is not None:
            row = await (await tx.conn.execute(_LOCATE, (comment_id, article_id))).fetchone()
        if row is None:
            raise NotFoundError({"comment": ["not found"]})
        if row["author_id"] != viewer_id:
            raise ForbiddenError({"comment": ["forbidden"]})
        await tx.conn.execute(_DELETE, (comment_id,))
        await tx.emit(
            events.COMMENT_DELETED,
            str(comment_id),
            {"id": comment_id, "article": {"id": article_id, "slug": slug}, "author": {"id": viewer_id}},
        )
