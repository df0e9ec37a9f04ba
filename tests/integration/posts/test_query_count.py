"""A page of articles costs the same number of statements whatever its size (no N+1)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.conftest import Api


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every statement psycopg sends (an observer around the real driver, not a fake)."""
    seen: list[str] = []
    original = psycopg.AsyncConnection.execute

    async def recording(self: psycopg.AsyncConnection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(query))
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncConnection, "execute", recording)
    return seen


async def _page_cost(api: Api, token: str, statements: list[str], path: str) -> int:
    statements.clear()
    response = await api.get(path, token)
    assert response.status_code == 200
    return len(statements)


async def test_list_and_feed_cost_is_constant_in_page_size(api: Api, statements: list[str]) -> None:
    reader = await api.register("reader")
    authors = [await api.register(f"author{n}") for n in range(4)]
    for n, token in enumerate(authors):
        await api.post(f"/api/profiles/author{n}/follow", reader)
        for m in range(5):
            slug = (await api.create_article(token, f"A{n}-{m}", tagList=["t1", "t2"]))["slug"]
            if m % 2:
                await api.post(f"/api/articles/{slug}/favorite", reader)
    await api.get("/api/articles?limit=2", reader)  # the reader's favorites and follows, held from here on

    small = await _page_cost(api, reader, statements, "/api/articles?limit=1")
    large = await _page_cost(api, reader, statements, "/api/articles?limit=20")
    feed_small = await _page_cost(api, reader, statements, "/api/articles/feed?limit=1")
    feed_large = await _page_cost(api, reader, statements, "/api/articles/feed?limit=20")
    filtered = await _page_cost(api, reader, statements, "/api/articles?tag=t1&favorited=reader&limit=20")

    assert small == large
    assert feed_small == feed_large
    assert filtered == large
    assert large <= 3  # the page, the count, and the session check on a cache miss


async def test_a_search_the_newest_documents_answer_in_full_runs_once(api: Api, statements: list[str]) -> None:
    """An index no larger than the newest span needs no second look for a rare word."""
    reader = await api.register("reader")
    await api.create_article(reader, "Gardens")
    await api.get("/api/articles?limit=2", reader)  # the reader's favorites and follows, held from here on
    listed = await _page_cost(api, reader, statements, "/api/articles?limit=20")
    searched = await _page_cost(api, reader, statements, "/api/articles?q=nowhere&limit=20")
    assert searched == listed  # the page (empty) and its count, as for the list
