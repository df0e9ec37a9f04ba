"""What a client or a producer sends for an article, parsed and checked: field by field,
every problem at once (``fields``), before any SQL runs. ``ArticleQuery`` is a list
page's filters, read by the ``posts`` entry from the query string.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from quill.domain import fields as f

__all__ = [
    "ArticleChanges",
    "ArticleQuery",
    "ImportRequest",
    "NewArticle",
    "parse_changes",
    "parse_import",
    "parse_new",
]


@dataclass(frozen=True)
class NewArticle:
    """A validated new article, as a create or an import hands it to the domain."""

    title: str
    description: str
    body: str
    tag_list: tuple[str, ...]
    created_at: datetime | None = None  # only imports keep an original time
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ArticleChanges:
    """A validated partial update; a field left ``UNSET`` keeps its value."""

    title: str | f.Unset = f.UNSET
    description: str | f.Unset = f.UNSET
    body: str | f.Unset = f.UNSET
    tag_list: tuple[str, ...] | f.Unset = f.UNSET


@dataclass(frozen=True)
class ArticleQuery:
    """The filters and page of a list of articles."""

    tag: str | None = None
    author: str | None = None
    favorited: str | None = None
    q: str | None = None
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class ImportRequest:
    """One article of an ``article.import.requested`` event, under its author's username."""

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
