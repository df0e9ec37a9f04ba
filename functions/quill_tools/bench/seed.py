"""A fast seeder for the scale benchmark: users and articles by COPY, the rest set-based.

``grow(url, articles)`` adds what is missing to reach that many seeded articles, so one
database grows 10k -> 100k -> 1M without starting over. The shape is a blog's: one
author per hundred articles, 1-3 tags per article drawn from a long-tailed vocabulary,
a few favorites each, every seeded user following twenty others. Text is drawn from a
long-tailed vocabulary too, so search terms range from common to rare.

Seeding bypasses the API and its outbox on purpose: it is data for reads, not events.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from quill.auth.passwords import hash_password
from quill.domain.search import DOCUMENT

__all__ = ["ARTICLES_PER_AUTHOR", "FOLLOWS_PER_USER", "PASSWORD", "grow", "tag", "word"]

ARTICLES_PER_AUTHOR = 100
FOLLOWS_PER_USER = 20
PASSWORD = "password123"  # noqa: S105 - the seeded accounts' password, for load tests only

_SYLLABLES = ("ka", "lo", "mi", "ra", "tu", "ve", "xi", "zo", "pe", "du")
_WORDS = ["".join(parts) for parts in itertools.product(_SYLLABLES, repeat=3)]  # 1,000 words
_WORD_WEIGHTS = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(_WORDS))))
_TAGS = [f"tag{rank}" for rank in range(200)]
_TAG_WEIGHTS = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(_TAGS))))


def word(rank: int) -> str:
    """The word of this popularity rank (0 is the most common)."""
    return _WORDS[rank]


def tag(rank: int) -> str:
    return _TAGS[rank]


def _text(rng: random.Random, count: int) -> str:
    return " ".join(rng.choices(_WORDS, cum_weights=_WORD_WEIGHTS, k=count))


_FAVORITES = """
WITH everyone AS (SELECT array_agg(id ORDER BY id) AS ids, count(*)::bigint AS n FROM users)
INSERT INTO favorites (user_id, article_id)
SELECT everyone.ids[1 + (a.id * 7919 + k * 104729) %% everyone.n], a.id
FROM articles a, everyone, generate_series(1, a.favorites_count) AS k
WHERE a.id > %(after)s
ON CONFLICT DO NOTHING
"""
_FOLLOWS = """
WITH everyone AS (SELECT array_agg(id ORDER BY id) AS ids, count(*)::bigint AS n FROM users)
INSERT INTO follows (follower_id, followee_id)
SELECT u.id, everyone.ids[1 + (u.id * 31 + k * 7919) %% everyone.n]
FROM users u, everyone, generate_series(1, %(follows)s) AS k
WHERE u.id > %(after)s AND u.id <> everyone.ids[1 + (u.id * 31 + k * 7919) %% everyone.n]
ON CONFLICT DO NOTHING
"""
_DOCUMENTS = sql.SQL(
    "INSERT INTO search_documents (article_id, document) SELECT a.id, {document} FROM articles a WHERE a.id > %(after)s"
).format(document=sql.SQL(DOCUMENT))  # DOCUMENT: a constant of quill.domain.search


def _seeded(conn: psycopg.Connection[tuple[int]], table: str, column: str, prefix: str) -> int:
    where = sql.SQL("SELECT count(*) FROM {} WHERE {} LIKE %s")
    statement = where.format(sql.Identifier(table), sql.Identifier(column))
    row = conn.execute(statement, (prefix + "%",)).fetchone()
    return int(row[0]) if row else 0


def _max_id(conn: psycopg.Connection[tuple[int]], table: str) -> int:
    row = conn.execute(sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def grow(database_url: str, articles: int, *, seed: int = 42) -> dict[str, float]:
    """Add seeded users and articles until there are ``articles``; return seconds per step."""
    timings: dict[str, float] = {}
    rng = random.Random(seed + articles)  # noqa: S311 - data shape, not security
    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        have_articles = _seeded(conn, "articles", "slug", "seed-")
        have_users = _seeded(conn, "users", "username", "u")
        users_after, articles_after = _max_id(conn, "users"), _max_id(conn, "articles")
        want_users = max(50, articles // ARTICLES_PER_AUTHOR)

        password_hash = asyncio.run(hash_password(PASSWORD))  # one hash: every seeded user can sign in
        started = time.perf_counter()
        with conn.cursor().copy("COPY users (username, email, password_hash, bio) FROM STDIN") as copy:
            for number in range(have_users, want_users):
                copy.write_row((f"u{number}", f"u{number}@example.com", password_hash, _text(rng, 6)))
        timings["users_copy_s"] = time.perf_counter() - started

        authors = [row[0] for row in conn.execute("SELECT id FROM users WHERE username LIKE 'u%'")]
        started = time.perf_counter()
        with conn.cursor().copy(
            "COPY articles (slug, author_id, title, description, body, tag_list, favorites_count,"
            " created_at, updated_at) FROM STDIN"
        ) as copy:
            for number in range(have_articles, articles):
                created = now - timedelta(seconds=rng.randrange(5 * 365 * 86400))
                tags = sorted(set(rng.choices(_TAGS, cum_weights=_TAG_WEIGHTS, k=rng.randint(1, 3))))
                copy.write_row(
                    (
                        f"seed-{number}",
                        rng.choice(authors),
                        _text(rng, 5).capitalize(),
                        _text(rng, 8),
                        _text(rng, 16),
                        tags,
                        rng.randint(0, 4),
                        created,
                        created,
                    )
                )
        timings["articles_copy_s"] = time.perf_counter() - started

        for step, statement in (
            ("favorites_s", _FAVORITES),
            ("follows_s", _FOLLOWS),
            ("search_documents_s", _DOCUMENTS),
        ):
            started = time.perf_counter()
            after = users_after if step == "follows_s" else articles_after
            conn.execute(statement, {"after": after, "follows": FOLLOWS_PER_USER})
            timings[step] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) articles, article_tags, favorites, follows, search_documents, users")
        timings["vacuum_analyze_s"] = time.perf_counter() - started
    return timings
