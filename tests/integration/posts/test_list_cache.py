"""Anonymous list pages come from Redis, and every write that changes a list is seen at once."""

from __future__ import annotations

import dataclasses

import psycopg

from quill import cache
from quill.settings import Settings, use_settings
from tests.conftest import Api


def _titles(response_json: dict[str, object]) -> list[str]:
    articles = response_json["articles"]
    assert isinstance(articles, list)
    return [article["title"] for article in articles]


def _rename_behind_quills_back(settings: Settings, title: str) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE articles SET title = %s", (title,))


async def test_anonymous_pages_are_served_from_the_cache_signed_in_ones_are_not(api: Api, settings: Settings) -> None:
    alice = await api.register("alice")
    await api.create_article(alice, "Original")
    assert _titles((await api.get("/api/articles")).json()) == ["Original"]

    _rename_behind_quills_back(settings, "Changed in SQL")  # no event, no bump: the cache keeps its page
    assert _titles((await api.get("/api/articles")).json()) == ["Original"]
    assert _titles((await api.get("/api/articles", alice)).json()) == ["Changed in SQL"]
    assert _titles((await api.get("/api/articles?limit=5")).json()) == ["Changed in SQL"]  # another page, another key


async def test_every_write_that_changes_a_list_is_seen_by_the_next_anonymous_read(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    first = await api.create_article(alice, "First", tagList=["t"])
    assert _titles((await api.get("/api/articles")).json()) == ["First"]

    await api.create_article(alice, "Second", tagList=["t"])
    assert _titles((await api.get("/api/articles?tag=t")).json()) == ["Second", "First"]
    assert _titles((await api.get("/api/articles")).json()) == ["Second", "First"]

    await api.post(f"/api/articles/{first['slug']}/favorite", bob)
    listed = (await api.get("/api/articles")).json()["articles"]
    assert [a["favoritesCount"] for a in listed] == [0, 1]

    await api.put("/api/user", alice, json={"user": {"bio": "New bio"}})
    assert {a["author"]["bio"] for a in (await api.get("/api/articles")).json()["articles"]} == {"New bio"}

    edited = await api.put(f"/api/articles/{first['slug']}", alice, json={"article": {"title": "First, edited"}})
    assert _titles((await api.get("/api/articles")).json()) == ["Second", "First, edited"]

    assert (await api.delete(f"/api/articles/{edited.json()['article']['slug']}", alice)).status_code in (200, 204)
    assert (await api.get("/api/articles")).json()["articlesCount"] == 1


async def test_lists_are_read_from_postgresql_while_redis_is_away(api: Api, settings: Settings) -> None:
    alice = await api.register("alice")
    await api.create_article(alice, "Original")
    await cache.aclose()
    away = dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0")  # nothing listens there
    with use_settings(away):
        _rename_behind_quills_back(settings, "From PostgreSQL")
        response = await api.get("/api/articles")
        await cache.aclose()
    assert response.status_code == 200
    assert _titles(response.json()) == ["From PostgreSQL"]
