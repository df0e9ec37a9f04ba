"""The names of cached views, in Redis and in each process's memory: the one place that spells them.

- ``article:<slug>`` and ``profile:<username>``: viewer-independent JSON views in Redis
  (and in memory in front of it);
- ``session:<id>``: whether a session is live (``1``/``0``), in Redis;
- ``user:<id>``: the signed-in user's own record, in memory only;
- ``list:...``: everything kept in memory that a list page shows: the anonymous pages
  (by their filters and by the query string they were asked with), and each viewer's
  marks (favorites and follows), pages, feed pages and articles. One prefix, so that a write that
  changes what a page shows drops them all at once.
"""

from __future__ import annotations

from quill.cache import key

__all__ = [
    "article_key",
    "list_asked_key",
    "list_key",
    "lists_prefix",
    "profile_key",
    "session_key",
    "user_key",
    "viewer_article_key",
    "viewer_feed_key",
    "viewer_key",
    "viewer_page_key",
]


def article_key(slug: str) -> str:
    return key("article", slug)


def profile_key(username: str) -> str:
    return key("profile", username)


def session_key(session_id: str) -> str:
    return key("session", session_id)


def user_key(user_id: int) -> str:
    return key("user", str(user_id))


def lists_prefix() -> str:
    return key("list", "")


def list_key(filters: str) -> str:
    """An anonymous page by its filters, as JSON."""
    return lists_prefix() + filters


def list_asked_key(query_string: bytes) -> str:
    """An anonymous page by the very query string it was asked with."""
    return lists_prefix() + "?" + query_string.decode("latin-1")


def viewer_key(user_id: int) -> str:
    """A viewer's marks; under the lists' prefix, so dropped with the pages."""
    return f"{lists_prefix()}viewer:{user_id}"


def viewer_page_key(user_id: int, query_string: bytes) -> str:
    return viewer_key(user_id) + "?" + query_string.decode("latin-1")


def viewer_feed_key(user_id: int, limit: int, offset: int) -> str:
    return viewer_key(user_id) + f"feed?{limit}&{offset}"


def viewer_article_key(user_id: int, slug: str) -> str:
    """An article as this viewer reads it (kept with the view and the marks it was made from)."""
    return viewer_key(user_id) + "article:" + slug
