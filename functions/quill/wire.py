"""Wire shapes: domain values to the RealWorld JSON, and nothing else.

Timestamps always carry milliseconds and a ``Z`` (``2026-11-21T23:22:18.303Z``);
list entries leave ``body`` out, as the RealWorld contract says.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from quill.domain.values import Article, Comment, Profile, User

__all__ = ["article", "article_list", "comment", "comments", "profile", "timestamp", "user"]


def timestamp(moment: datetime) -> str:
    # isoformat is C and several times faster than strftime; in UTC it ends "+00:00".
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def user(value: User, token: str) -> dict[str, Any]:
    return {
        "user": {
            "email": value.email,
            "token": token,
            "username": value.username,
            "bio": value.bio,
            "image": value.image,
        }
    }


def _profile(value: Profile) -> dict[str, Any]:
    return {"username": value.username, "bio": value.bio, "image": value.image, "following": value.following}


def profile(value: Profile) -> dict[str, Any]:
    return {"profile": _profile(value)}


def _article(value: Article, *, with_body: bool) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "slug": value.slug,
        "title": value.title,
        "description": value.description,
    }
    if with_body:
        shape["body"] = value.body
    shape.update(
        {
            "tagList": list(value.tag_list),
            "createdAt": timestamp(value.created_at),
            "updatedAt": timestamp(value.updated_at),
            "favorited": value.favorited,
            "favoritesCount": value.favorites_count,
            "author": _profile(value.author),
        }
    )
    return shape


def article(value: Article) -> dict[str, Any]:
    return {"article": _article(value, with_body=True)}


def article_list(values: list[Article], total: int) -> dict[str, Any]:
    return {"articles": [_article(value, with_body=False) for value in values], "articlesCount": total}


def _comment(value: Comment) -> dict[str, Any]:
    return {
        "id": value.id,
        "createdAt": timestamp(value.created_at),
        "updatedAt": timestamp(value.updated_at),
        "body": value.body,
        "author": _profile(value.author),
    }


def comment(value: Comment) -> dict[str, Any]:
    return {"comment": _comment(value)}


def comments(values: list[Comment]) -> dict[str, Any]:
    return {"comments": [_comment(value) for value in values]}
