"""The invalidation table against the events the writes really emit: each drops what it changed."""

from __future__ import annotations

from typing import Any

import psycopg

from quill import db
from quill.reads import keys, stale
from quill.routing import load_module
from quill.settings import Settings
from tests.conftest import Api


def _events(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute("SELECT type, data FROM outbox ORDER BY id").fetchall()
    return [(row[0], row[1]) for row in rows]


def _user_id(settings: Settings, username: str) -> int:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute("SELECT id FROM users WHERE username = %s", (username,)).fetchone()
    assert row is not None
    return int(row[0])


async def _stale(change: tuple[str, dict[str, Any]]) -> tuple[set[str], bool]:
    async with db.connection() as conn:
        resolved = await stale.resolve(conn, [change])
    return set(resolved.names), resolved.lists


async def test_every_write_drops_the_views_it_changes(api: Api, settings: Settings) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    first = (await api.create_article(alice, "First"))["slug"]
    await api.put(f"/api/articles/{first}", alice, json={"article": {"title": "Renamed"}})
    renamed = (await api.get("/api/articles?author=alice")).json()["articles"][0]["slug"]
    await api.post(f"/api/articles/{renamed}/favorite", bob)
    await api.delete(f"/api/articles/{renamed}/favorite", bob)
    await api.post("/api/profiles/alice/follow", bob)
    await api.delete("/api/profiles/alice/follow", bob)
    await api.put("/api/user", alice, json={"user": {"username": "alicia"}})
    alice_id, bob_id = _user_id(settings, "alicia"), _user_id(settings, "bob")
    expected = {
        "io.quill.user.registered.v1": (set(), False),
        "io.quill.article.created.v1": (set(), True),
        "io.quill.article.updated.v1": ({keys.article_key(first), keys.article_key(renamed)}, True),
        "io.quill.article.favorited.v1": ({keys.article_key(renamed)}, True),
        "io.quill.article.unfavorited.v1": ({keys.article_key(renamed)}, True),
        "io.quill.profile.followed.v1": ({keys.viewer_key(bob_id)}, False),
        "io.quill.profile.unfollowed.v1": ({keys.viewer_key(bob_id)}, False),
        "io.quill.user.updated.v1": (
            {
                keys.profile_key("alice"),
                keys.profile_key("alicia"),
                keys.user_key(alice_id),
                keys.article_key(renamed),  # the author's articles embed the profile
            },
            True,
        ),
    }
    seen = set()
    for change in _events(settings):
        assert await _stale(change) == expected[change[0]], change[0]
        seen.add(change[0])
    assert seen == set(expected)

    await api.delete(f"/api/articles/{renamed}", alice)
    deleted = _events(settings)[-1]
    assert await _stale(deleted) == ({keys.article_key(renamed)}, True)


def test_the_cache_function_drops_what_the_table_says_for_every_event_it_hears() -> None:
    heard = set(load_module("cache").CONSUMER.handlers)
    assert heard <= set(stale.STALE)
