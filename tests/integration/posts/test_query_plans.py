"""The list, filter, feed and search queries use indexes, not scans of ``articles``.

A few thousand rows are seeded straight in SQL (fast), statistics are refreshed, and
each query the ``posts`` function runs is EXPLAINed with the parameters it would bind.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from quill.domain import pages
from quill.settings import Settings

SEED = """
INSERT INTO users (username, email, password_hash)
SELECT 'seed' || n, 'seed' || n || '@example.com', 'x' FROM generate_series(1, 200) AS n;
INSERT INTO articles (slug, author_id, title, description, body, tag_list, created_at, updated_at)
SELECT 'seeded-' || n, 1 + n % 200, 'Seeded title ' || n, 'd', 'body text ' || n,
       ARRAY['tag' || (n % 50)], now() - n * interval '1 minute', now() - n * interval '1 minute'
FROM generate_series(1, 20000) AS n;
INSERT INTO article_tags (article_id, tag, created_at) SELECT id, 'rare', created_at FROM articles WHERE id % 1000 = 0;
INSERT INTO favorites (user_id, article_id) SELECT 1 + id % 200, id FROM articles WHERE id % 7 = 0;
INSERT INTO follows (follower_id, followee_id) SELECT 1, n FROM generate_series(2, 6) AS n;
INSERT INTO search_documents (article_id, document)
SELECT id, to_tsvector('english', title || ' ' || body) FROM articles;
ANALYZE;
"""


@pytest.fixture
def seeded(settings: Settings) -> Settings:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(SEED.encode())
    return settings


def _plan(settings: Settings, query: str, params: dict[str, Any]) -> str:
    with psycopg.connect(settings.database_url, options="-c plan_cache_mode=force_custom_plan") as conn:
        rows = conn.execute(("EXPLAIN " + query).encode(), params).fetchall()
    return "\n".join(row[0] for row in rows)


def _params(**changes: Any) -> dict[str, Any]:
    base = {
        "tag": None,
        "author": None,
        "favorited": None,
        "q": None,
        "feed_of": None,
        "viewer": 1,
        "limit": 20,
        "offset": 0,
    }
    base.update(changes)
    return base


SELECTIVE = [
    _params(),
    _params(tag="rare"),
    _params(author="seed9"),
    _params(favorited="seed3"),
    _params(q="12345"),
]
SELECTIVE_IDS = ["list", "rare-tag", "author", "favorited", "search"]
EVERY_FILTER = [_params(tag="tag7"), _params(author="seed9"), _params(favorited="seed3"), _params(feed_of=1)]


@pytest.mark.parametrize("params", SELECTIVE, ids=SELECTIVE_IDS)
def test_a_selective_page_never_scans_the_articles_table(seeded: Settings, params: dict[str, Any]) -> None:
    page, count = pages.page_sql(params)
    for query in (page, count):
        plan = _plan(seeded, query, params)
        assert "Seq Scan on articles" not in plan, plan
    if params["q"] is None:
        assert "search_documents" not in page, "the search index joins in only for ?q="


@pytest.mark.parametrize("params", EVERY_FILTER, ids=["tag", "author", "favorited", "feed"])
def test_every_filter_is_planned_as_a_join_not_a_per_row_subplan(seeded: Settings, params: dict[str, Any]) -> None:
    for query in pages.page_sql(params):
        plan = _plan(seeded, query, params)
        assert "hashed SubPlan" not in plan, plan


@pytest.mark.parametrize("words", ["text", "12345", "nowhere"], ids=["common", "rare", "absent"])
def test_a_search_walks_only_the_newest_documents_then_the_index(seeded: Settings, words: str) -> None:
    """The first try is bounded to the newest documents whatever the planner guesses of the
    word; the second (a word too rare for the first) is fenced from an unbounded id walk."""
    params = _params(q=words, viewer=None)
    for query in pages.page_sql(params):
        plan = _plan(seeded, query, params)
        assert "Seq Scan" not in plan, plan
        assert "Index Cond: (article_id >" in plan, plan
    for query in pages.page_sql(params, everything=True):
        plan = _plan(seeded, query, params)
        assert "Seq Scan on articles" not in plan, plan
        assert "Scan Backward using search_documents_pkey on search_documents sd" not in plan, plan
