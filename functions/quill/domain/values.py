"""The domain's values: frozen dataclasses, independent of HTTP and of the wire shapes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Article", "Comment", "Profile", "User"]


@dataclass(frozen=True)
class User:
    """A user's own record, as ``GET /api/user`` shows it (the password hash never leaves storage)."""

    id: int
    username: str
    email: str
    bio: str | None
    image: str | None


@dataclass(frozen=True)
class Profile:
    """A user as another user sees them, with the viewer's ``following`` flag."""

    username: str
    bio: str | None
    image: str | None
    following: bool


@dataclass(frozen=True)
class Article:
    """An article with its author and the viewer's flags, ready for the wire."""

    id: int
    slug: str
    title: str
    description: str
    body: str | None
    tag_list: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    favorited: bool
    favorites_count: int
    author_id: int
    author: Profile


@dataclass(frozen=True)
class Comment:
    """A comment with its author, as the viewer sees them."""

    id: int
    body: str
    created_at: datetime
    updated_at: datetime
    author: Profile
