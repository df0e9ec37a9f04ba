"""The domain's values: frozen dataclasses, independent of HTTP and of the wire shapes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Article", "Comment", "Profile", "User"]


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str
    bio: str | None
    image: str | None


@dataclass(frozen=True)
class Profile:
    username: str
    bio: str | None
    image: str | None
    following: bool


@dataclass(frozen=True)
class Article:
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
    id: int
    body: str
    created_at: datetime
    updated_at: datetime
    author: Profile
