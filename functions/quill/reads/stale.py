"""Which cached views each change makes stale: one table, applied after commit.

A change is an event a write emits (``Transaction.emit``), an event a consumer hears
(the ``cache`` function records what other functions changed), or a write with no event
of its own (``Transaction.changed``, e.g. the search index). ``STALE`` maps its type to
the views it makes stale; ``outbox.transaction`` resolves them inside the transaction
(the articles of an author, as it sees them) and drops them right after the commit, in
Redis and, through the channel, in every process's memory (read-your-writes). The
``cache`` function drops the same views again from the events, so a view left stale by
a Redis blip during a write is still dropped once Redis answers.

To make a new change drop a view: add one line to ``STALE``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from quill import events
from quill.db import Connection
from quill.domain import search, slugs
from quill.reads import keys, store

__all__ = ["LIVE_SECONDS", "STALE", "Resolved", "Stale", "drop", "resolve", "revoke_sessions"]

# How long Redis keeps whether a session is live (``reads.sessions``).
LIVE_SECONDS = 30


@dataclass(frozen=True)
class Stale:
    """Views one change makes stale."""

    articles: tuple[str, ...] = ()  # by slug
    profiles: tuple[str, ...] = ()  # by username
    users: tuple[int, ...] = ()  # the signed-in user's own record
    viewers: tuple[int, ...] = ()  # a viewer's marks (favorites and follows)
    authors: tuple[int, ...] = ()  # every article by these authors (an author's profile is embedded)
    lists: bool = False  # every list and feed page, and every viewer's marks


_LISTS = Stale(lists=True)


def _article(data: dict[str, Any]) -> Stale:
    return Stale(articles=(data["slug"], data.get("previousSlug", "")), lists=True)


def _favorite(data: dict[str, Any]) -> Stale:
    return Stale(articles=(data["article"]["slug"],), lists=True)


def _user(data: dict[str, Any]) -> Stale:
    names = (data["previousUsername"], data["username"])
    return Stale(profiles=names, users=(int(data["id"]),), authors=(int(data["id"]),), lists=True)


def _follow(data: dict[str, Any]) -> Stale:
    return Stale(viewers=(int(data["follower"]["id"]),))


# change type -> what it makes stale, from the change's data
STALE: dict[str, Callable[[dict[str, Any]], Stale]] = {
    events.ARTICLE_CREATED: lambda data: _LISTS,
    events.ARTICLE_UPDATED: _article,
    events.ARTICLE_DELETED: _article,
    events.ARTICLE_FAVORITED: _favorite,
    events.ARTICLE_UNFAVORITED: _favorite,
    events.USER_UPDATED: _user,
    events.PROFILE_FOLLOWED: _follow,
    events.PROFILE_UNFOLLOWED: _follow,
    search.REINDEXED: lambda data: _LISTS,  # search pages built before the reindex miss the change
}


@dataclass(frozen=True)
class Resolved:
    """What an event makes stale: the cached names it names, and whether every list page goes too."""

    names: frozenset[str]
    lists: bool

    def __bool__(self) -> bool:
        return bool(self.names) or self.lists


async def resolve(conn: Connection, changes: Iterable[tuple[str, dict[str, Any]]]) -> Resolved:
    """The keys ``changes`` make stale, read inside the transaction that made them."""
    names: set[str] = set()
    lists = False
    for type, data in changes:
        rule = STALE.get(type)
        if rule is None:
            continue
        stale = rule(data)
        names.update(keys.article_key(slug) for slug in stale.articles if slug)
        names.update(keys.profile_key(name) for name in stale.profiles if name)
        names.update(keys.user_key(user_id) for user_id in stale.users)
        names.update(keys.viewer_key(user_id) for user_id in stale.viewers)
        for author_id in stale.authors:
            names.update(keys.article_key(slug) for slug in await slugs.of_author(conn, author_id))
        lists = lists or stale.lists
    return Resolved(frozenset(names), lists)


async def drop(stale: Resolved) -> None:
    """After commit: drop the views, everywhere (one Redis round trip)."""
    await store.invalidate(stale.names, prefixes=[keys.lists_prefix()] if stale.lists else [])


async def revoke_sessions(*session_ids: str) -> None:
    """After commit: make revoked sessions fail at once, not when their cached answer
    expires, in Redis (``0`` instead of a tombstone) and in every process's memory."""
    names = [keys.session_key(session_id) for session_id in session_ids]
    await store.invalidate(names, marker=b"0", seconds=LIVE_SECONDS, operation="revocation")
