"""articlesCount of the unfiltered and tag-filtered lists comes from kept totals, not a
count of the table: these check the totals agree with the rows through every write path."""

from __future__ import annotations

import asyncio

import psycopg

from quill.settings import Settings
from tests.conftest import Api

_KEPT_TAGS = "SELECT tag, sum(articles)::int FROM tag_totals GROUP BY tag HAVING sum(articles) <> 0 ORDER BY tag"
_COUNTED_TAGS = "SELECT tag, count(*)::int FROM article_tags GROUP BY tag ORDER BY tag"


def _truth(settings: Settings) -> tuple[int, int]:
    """(kept total, counted total); the kept per-tag totals must equal the rows too."""
    with psycopg.connect(settings.database_url) as conn:
        kept = conn.execute("SELECT sum(articles) FROM article_totals").fetchone()
        counted = conn.execute("SELECT count(*) FROM articles").fetchone()
        assert conn.execute(_KEPT_TAGS).fetchall() == conn.execute(_COUNTED_TAGS).fetchall()
    assert kept is not None
    assert counted is not None
    return int(kept[0]), int(counted[0])


async def _count(api: Api, query: str = "") -> int:
    response = await api.get(f"/api/articles?limit=1{query}")
    assert response.status_code == 200, response.text
    total: int = response.json()["articlesCount"]
    return total


async def test_totals_follow_creates_deletes_and_tag_edits(api: Api, settings: Settings) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    first = await api.create_article(alice, "One", tagList=["x", "y"])
    await api.create_article(alice, "Two", tagList=["x"])
    await api.create_article(bob, "Three", tagList=["y"])
    assert (await _count(api), await _count(api, "&tag=x"), await _count(api, "&tag=y")) == (3, 2, 2)

    edited = await api.put(f"/api/articles/{first['slug']}", alice, json={"article": {"tagList": ["z"]}})
    assert edited.status_code == 200, edited.text
    assert (await _count(api, "&tag=x"), await _count(api, "&tag=y"), await _count(api, "&tag=z")) == (1, 1, 1)
    assert (await api.get("/api/tags")).json()["tags"] == ["x", "y", "z"]
    _truth(settings)
    favorited = await api.post(f"/api/articles/{first['slug']}/favorite", bob)  # an update that keeps the tags
    assert favorited.status_code == 200
    _truth(settings)

    assert (await api.delete(f"/api/articles/{first['slug']}", alice)).status_code in (200, 204)
    assert (await _count(api), await _count(api, "&tag=z")) == (2, 0)
    assert "z" not in (await api.get("/api/tags")).json()["tags"]
    assert _truth(settings) == (2, 2)


async def test_totals_follow_concurrent_writers_on_many_connections(api: Api, settings: Settings) -> None:
    tokens = [await api.register(f"writer{n}") for n in range(6)]
    tags = [["a", "b"], ["b", "a"], ["c"]]  # overlapping tags, in either order
    await asyncio.gather(
        *(api.create_article(token, f"Post {n}", tagList=tags[n % 3]) for n, token in enumerate(tokens * 3))
    )
    assert await _count(api) == 18
    assert await _count(api, "&tag=a") == 12
    assert _truth(settings) == (18, 18)


async def test_totals_follow_bulk_and_cascaded_deletes_and_truncate(api: Api, settings: Settings) -> None:
    alice = await api.register("alice")
    for number in range(4):
        await api.create_article(alice, f"Post {number}")
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM users WHERE username = 'alice'")  # cascades to her articles
    assert await _count(api) == 0
    assert _truth(settings) == (0, 0)
    await api.create_article(await api.register("bob"), "Kept")
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE articles CASCADE")
    assert _truth(settings) == (0, 0)


async def test_concurrent_tag_swaps_neither_deadlock_nor_drift(api: Api, settings: Settings) -> None:
    """Edits moving tags in opposite directions at once: each trigger locks its tags in one
    statement, in tag order, so no two writers wait on each other in a cycle."""
    alice = await api.register("alice")
    one = await api.create_article(alice, "One", tagList=["p", "q"])
    two = await api.create_article(alice, "Two", tagList=["q", "p"])

    async def swap(slug: str, tags: list[str]) -> int:
        response = await api.put(f"/api/articles/{slug}", alice, json={"article": {"tagList": tags}})
        return response.status_code

    edits = [swap(one["slug"], ["r", "p"] if n % 2 else ["q", "s"]) for n in range(10)]
    edits += [swap(two["slug"], ["s", "q"] if n % 2 else ["p", "r"]) for n in range(10)]
    assert set(await asyncio.gather(*edits)) == {200}
    assert _truth(settings) == (2, 2)
