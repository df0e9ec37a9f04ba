"""``?q=`` ranks a bounded window of matches: the newest ``SEARCH_WINDOW``.

More than ``SEARCH_SPAN`` articles are seeded straight in SQL, so both paths run: a common
word fills the window from the newest documents alone; a rare one, found only in an old
article, falls back to the whole index.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from quill.domain.pages import SEARCH_SPAN, SEARCH_WINDOW
from quill.domain.search import DOCUMENT
from quill.settings import Settings
from tests.conftest import Api

ARTICLES = SEARCH_SPAN + 5_000

SEED = sql.SQL("""
INSERT INTO users (username, email, password_hash)
SELECT 'writer' || n, 'writer' || n || '@example.com', 'x' FROM generate_series(1, 50) AS n;
INSERT INTO articles (slug, author_id, title, description, body, tag_list, created_at, updated_at)
SELECT 'seeded-' || n, 1 + n % 50, 'Common title ' || n, 'plain',
       CASE WHEN n = 10 THEN 'an aardvark lives here' WHEN n % 100 = 0 THEN 'ember glow' ELSE 'body' END,
       ARRAY['t' || (n % 3)], moment, moment
FROM generate_series(1, {articles}) AS n, LATERAL (SELECT now() - ({articles} - n) * interval '1 second') AS m (moment);
UPDATE articles SET title = 'A lantern' WHERE slug = 'seeded-20';
UPDATE articles SET body = 'a lantern in the body' WHERE slug = {next_to_last};
INSERT INTO search_documents (article_id, document) SELECT a.id, {document} FROM articles a;
ANALYZE;
""").format(
    articles=sql.Literal(ARTICLES), next_to_last=sql.Literal(f"seeded-{ARTICLES - 1}"), document=sql.SQL(DOCUMENT)
)


@pytest.fixture
async def seeded(api: Api, settings: Settings) -> Api:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(SEED)
    return api


async def _search(api: Api, query: str) -> tuple[list[str], int]:
    response = await api.get(f"/api/articles?{query}")
    assert response.status_code == 200, response.text
    body = response.json()
    return [article["slug"] for article in body["articles"]], body["articlesCount"]


async def test_a_common_word_ranks_and_counts_its_newest_matches(seeded: Api) -> None:
    newest = {f"seeded-{n}" for n in range(ARTICLES, ARTICLES - SEARCH_WINDOW, -1)}
    seen: list[str] = []
    for offset in range(0, SEARCH_WINDOW, 20):
        slugs, total = await _search(seeded, f"q=common&limit=20&offset={offset}")
        assert total == SEARCH_WINDOW
        seen += slugs
    assert len(seen) == len(set(seen)) == SEARCH_WINDOW
    assert set(seen) == newest
    assert await _search(seeded, f"q=common&offset={SEARCH_WINDOW}") == ([], SEARCH_WINDOW)


async def test_a_word_in_many_articles_fills_the_window_from_the_newest(seeded: Api) -> None:
    slugs, total = await _search(seeded, "q=ember&limit=100")
    assert total == SEARCH_WINDOW  # 250 articles say "ember"; the newest 100 are ranked
    assert min(int(slug.removeprefix("seeded-")) for slug in slugs) == ARTICLES - (SEARCH_WINDOW - 1) * 100


async def test_a_rare_word_is_found_beyond_the_newest_documents(seeded: Api) -> None:
    assert await _search(seeded, "q=aardvark") == (["seeded-10"], 1)
    assert await _search(seeded, "q=aardvark&tag=t1") == (["seeded-10"], 1)
    assert await _search(seeded, "q=aardvark&tag=t2") == ([], 0)


async def test_a_title_match_outranks_a_newer_body_match(seeded: Api) -> None:
    assert await _search(seeded, "q=lantern") == (["seeded-20", f"seeded-{ARTICLES - 1}"], 2)


async def test_filters_narrow_the_window_they_rank(seeded: Api) -> None:
    slugs, total = await _search(seeded, "q=common&tag=t0&limit=100")
    numbers = sorted(int(slug.removeprefix("seeded-")) for slug in slugs)
    newest = ARTICLES - ARTICLES % 3
    assert total == SEARCH_WINDOW
    assert numbers == list(range(newest - (SEARCH_WINDOW - 1) * 3, newest + 1, 3))
