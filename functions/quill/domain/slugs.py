"""Article slugs: made from titles, kept unique under concurrent writers. Reads ``articles``.

A slug is the title's words in lower case joined by dashes; when it is taken (or is
``feed``, a route of its own) a random suffix is tried, up to eight times. The writes in
``articles`` run their own statements through ``with_free_slug`` and ``insert_with_free_slug``.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterator
from typing import Any

import psycopg.errors

from quill.db import Connection
from quill.errors import NotFoundError

__all__ = ["candidates", "insert_with_free_slug", "keeps_slug", "of_author", "slugify", "with_free_slug"]

_OF_AUTHOR = "SELECT slug FROM articles WHERE author_id = %s"


def slugify(title: str) -> str:
    """Lower-case words joined by dashes; letters of every script are kept."""
    normal = unicodedata.normalize("NFKC", title).lower()
    slug = re.sub(r"[^\w]+|_+", "-", normal).strip("-")[:80].strip("-")
    return slug or "article"


def candidates(base: str) -> Iterator[str]:
    """The plain slug first (never ``feed``), then the same with a random suffix."""
    if base != "feed":
        yield base
    for _ in range(8):
        yield f"{base}-{secrets.token_hex(3)}"


def keeps_slug(base: str, current: str) -> bool:
    """Whether ``current`` is ``base`` or ``base`` with a suffix: a new title that slugs to
    what the article already has keeps its slug."""
    return current == base or re.fullmatch(re.escape(base) + r"-[0-9a-f]{6}", current) is not None


async def with_free_slug(conn: Connection, base: str, statement: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run an UPDATE that sets ``slug``, moving to the next candidate if it is taken.

    ``conn`` is in autocommit, so each try is a transaction of its own: a try that loses
    the slug to another article fails alone, and the next begins clean.
    """
    for slug in candidates(base):
        try:
            row = await (await conn.execute(statement, {**params, "slug": slug})).fetchone()
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name != "articles_slug_key":
                raise
            continue
        if row is None:
            raise NotFoundError({"article": ["not found"]})
        return row
    raise RuntimeError(f"no free slug for {base!r} after 9 attempts")


async def insert_with_free_slug(conn: Connection, statement: str, params: dict[str, Any]) -> dict[str, Any]:
    """Insert under the first free slug candidate. A taken slug inserts nothing (``ON
    CONFLICT DO NOTHING``) rather than failing, so it may run inside a larger transaction
    (an import) as well as on its own."""
    for slug in candidates(params["slug"]):
        row = await (await conn.execute(statement, {**params, "slug": slug})).fetchone()
        if row is not None:
            return row
    raise RuntimeError(f"no free slug for {params['slug']!r} after 9 attempts")


async def of_author(conn: Connection, author_id: int) -> list[str]:
    """The slugs of every article by ``author_id``, as ``conn`` sees them."""
    rows = await (await conn.execute(_OF_AUTHOR, (author_id,))).fetchall()
    return [row["slug"] for row in rows]
