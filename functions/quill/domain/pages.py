"""The SQL of a page of articles: the list, its filters, the feed and the search.

A page is two statements whatever its size (the page with authors, tags, favorite and
follow flags; and the total count), or one for a search, whose page carries its count.
Every statement is composed with ``psycopg.sql`` from the literal templates below, once
per combination of filters (a handful), never per request: values are always bound
parameters, and nothing a client sends is ever part of the text.
"""

from __future__ import annotations

import functools
from typing import Any

from psycopg import sql

from quill.db import Connection

__all__ = ["SEARCH_SPAN", "SEARCH_WINDOW", "VIEWER_FLAGS", "fetch_page", "page_sql"]

# The viewer's flags of the article ``a``; both false for an anonymous viewer (NULL).
VIEWER_FLAGS = sql.SQL("""
    EXISTS (SELECT 1 FROM favorites fv WHERE fv.article_id = a.id AND fv.user_id = %(viewer)s) AS favorited,
    EXISTS (SELECT 1 FROM follows fo WHERE fo.followee_id = a.author_id AND fo.follower_id = %(viewer)s)
        AS following
""")

_SUMMARY_COLUMNS = sql.SQL("""
    a.id, a.slug, a.title, a.description, a.tag_list, a.created_at, a.updated_at, a.favorites_count,
    a.author_id, u.username, u.bio, u.image,
""")

# Each filter is a constant fragment, ANDed in only when the query has it: an
# `x IS NULL OR a.id IN (...)` form would keep PostgreSQL from turning the IN into a
# semi-join (sublinks are pulled up before constants fold), so counts scanned the table.
_FILTER_SQL: dict[str, sql.SQL] = {
    "tag": sql.SQL("a.id IN (SELECT t.article_id FROM article_tags t WHERE t.tag = %(tag)s)"),
    "author": sql.SQL("u.username = %(author)s"),
    "favorited": sql.SQL(
        "a.id IN (SELECT fb.article_id FROM favorites fb JOIN users fu ON fu.id = fb.user_id"
        " WHERE fu.username = %(favorited)s)"
    ),
    "feed_of": sql.SQL("a.author_id IN (SELECT fo2.followee_id FROM follows fo2 WHERE fo2.follower_id = %(feed_of)s)"),
    "q": sql.SQL("sd.document @@ websearch_to_tsquery('english', %(q)s)"),
}

# A filter used alone can bound the page's candidates by LIMIT + OFFSET, so its cost does
# not grow with the matches: ?tag= reads the first entries of (tag, created_at DESC), so
# a popular tag costs what a rare one does; the feed takes each followed author's newest
# few from (author_id, created_at DESC). Combined with others, the general form is kept.
_SOLE_FILTER_SQL: dict[str, sql.SQL] = {
    "tag": sql.SQL(
        "a.id IN (SELECT t.article_id FROM article_tags t WHERE t.tag = %(tag)s"
        " ORDER BY t.created_at DESC, t.article_id DESC LIMIT %(limit)s + %(offset)s)"
    ),
    # Sorted and cut again outside the LATERAL, on index-only columns, so only the page's
    # candidates are fetched from the heap (not limit + offset per followed author).
    "feed_of": sql.SQL(
        "a.id IN (SELECT newest.id FROM follows fo2 CROSS JOIN LATERAL"
        " (SELECT a2.id, a2.created_at FROM articles a2 WHERE a2.author_id = fo2.followee_id"
        " ORDER BY a2.created_at DESC, a2.id DESC LIMIT %(limit)s + %(offset)s) AS newest"
        " WHERE fo2.follower_id = %(feed_of)s"
        " ORDER BY newest.created_at DESC, newest.id DESC LIMIT %(limit)s + %(offset)s)"
    ),
}

_FROM = sql.SQL("\nFROM articles a JOIN users u ON u.id = a.author_id\n")
_FROM_SEARCH = sql.SQL(
    "FROM articles a JOIN users u ON u.id = a.author_id\nJOIN search_documents sd ON sd.article_id = a.id\n"
)
_FROM_INDEX = sql.SQL("FROM search_documents sd\n")

_PAGE = sql.SQL(
    "SELECT{columns}{flags}{source}{where}ORDER BY a.created_at DESC, a.id DESC\nLIMIT %(limit)s OFFSET %(offset)s"
)

# articlesCount without counting rows: the unfiltered total and each tag's are kept by
# triggers (0003_article_totals.sql, 0005_tag_totals.sql); every article has an author,
# so the page's join to users cannot drop one.
_TOTAL = sql.SQL("SELECT sum(articles)::bigint AS total FROM article_totals")
_TAG_TOTAL = sql.SQL("SELECT coalesce(sum(articles), 0)::bigint AS total FROM tag_totals WHERE tag = %(tag)s")
_COUNT = sql.SQL("SELECT count(*) AS total{source}{where}")

# A search ranks its newest SEARCH_WINDOW matches, not all of them: ranking every match
# of a common word read thousands of rows at 1M articles. The first try looks only at the
# newest SEARCH_SPAN documents, walking the index newest first, so its cost does not grow
# with the table; a word too rare to fill the window there is looked up in the whole index
# (a rare word has few matches: cheap). ``articlesCount`` counts the same window, so a
# client pages through exactly what was ranked. The page carries that total in each row.
SEARCH_WINDOW = 100
SEARCH_SPAN = 20_000
_RANK = sql.SQL("ts_rank(sd.document, websearch_to_tsquery('english', %(q)s)) AS rank")
_NEWEST_HITS = sql.SQL("ORDER BY sd.article_id DESC LIMIT {window}").format(window=sql.Literal(SEARCH_WINDOW))
# The newest SEARCH_SPAN documents only (ids only grow): a bounded walk whatever the word.
_RECENT_HITS = sql.SQL(
    "hits AS MATERIALIZED (SELECT sd.article_id, {rank}\n{source}{where}"
    "  AND sd.article_id > (SELECT max(article_id) FROM search_documents) - {span}\n{newest})"
)
# Every match, fenced by MATERIALIZED: given ORDER BY ... LIMIT, the planner would walk the
# whole id index looking for a word it guesses is common.
_ALL_HITS = sql.SQL(
    "matches AS MATERIALIZED (SELECT sd.article_id, sd.document\n{source}{where}),\n"
    "hits AS MATERIALIZED (SELECT sd.article_id, {rank} FROM matches sd {newest})"
)
# Whether the newest SEARCH_SPAN documents are all there are (a blog of fewer articles):
# then the first try already looked everywhere and is not repeated.
_WHOLE_INDEX = sql.SQL(
    "(SELECT coalesce(max(article_id) - min(article_id) < {span}, true) FROM search_documents)"
).format(span=sql.Literal(SEARCH_SPAN))
_SEARCH_PAGE = sql.SQL(
    "WITH {hits},\n"
    "page AS (SELECT article_id, rank FROM hits ORDER BY rank DESC, article_id DESC"
    " LIMIT %(limit)s OFFSET %(offset)s)\n"
    "SELECT{columns}{flags}, (SELECT count(*) FROM hits) AS total, {whole} AS whole\n"
    "FROM page JOIN articles a ON a.id = page.article_id JOIN users u ON u.id = a.author_id\n"
    "ORDER BY page.rank DESC, a.id DESC"
)
_SEARCH_COUNT = sql.SQL("WITH {hits}\nSELECT count(*) AS total, {whole} AS whole FROM hits")


def _where(chosen: tuple[str, ...], *, bounded: bool) -> sql.Composable:
    """The WHERE clause for these filters; ``bounded=False`` for counts, which see every match."""
    if bounded and len(chosen) == 1 and chosen[0] in _SOLE_FILTER_SQL:
        fragments = [_SOLE_FILTER_SQL[chosen[0]]]
    else:
        fragments = [_FILTER_SQL[name] for name in chosen]
    if not fragments:
        return sql.SQL("")
    return sql.SQL("WHERE {}\n").format(sql.SQL("\n  AND ").join(fragments))


def _search(chosen: tuple[str, ...], *, everything: bool) -> tuple[sql.Composable, sql.Composable]:
    # The search alone needs only its index; other filters need the article and author.
    source = _FROM_INDEX if chosen == ("q",) else _FROM_SEARCH
    template = _ALL_HITS if everything else _RECENT_HITS
    hits = template.format(
        rank=_RANK,
        source=source,
        where=_where(chosen, bounded=False),
        span=sql.Literal(SEARCH_SPAN),
        newest=_NEWEST_HITS,
    )
    whole = sql.SQL("true") if everything else _WHOLE_INDEX
    page = _SEARCH_PAGE.format(hits=hits, columns=_SUMMARY_COLUMNS, flags=VIEWER_FLAGS, whole=whole)
    return page, _SEARCH_COUNT.format(hits=hits, whole=whole)


@functools.cache
def _statements(chosen: tuple[str, ...], *, everything: bool = False) -> tuple[bytes, bytes]:
    """Built once per combination of filters (a handful), not once per request.

    ``everything`` only matters to a search: look in the whole index, not the newest part."""
    if "q" in chosen:
        page, count = _search(chosen, everything=everything)
    else:
        page = _PAGE.format(
            columns=_SUMMARY_COLUMNS, flags=VIEWER_FLAGS, source=_FROM, where=_where(chosen, bounded=True)
        )
        if not chosen:
            count = _TOTAL
        elif chosen == ("tag",):
            count = _TAG_TOTAL
        else:
            count = _COUNT.format(source=_FROM, where=_where(chosen, bounded=False))
    return page.as_bytes(None), count.as_bytes(None)


def _chosen(params: dict[str, Any]) -> tuple[str, ...]:
    return tuple(name for name in _FILTER_SQL if params.get(name) is not None)


def page_sql(params: dict[str, Any], *, everything: bool = False) -> tuple[str, str]:
    """The page and count statements for these parameters (for plans and the benchmark)."""
    page, count = _statements(_chosen(params), everything=everything)
    return page.decode(), count.decode()


async def fetch_page(conn: Connection, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The page's rows, newest first (a search: most relevant first), and the number of all
    that match; a search ranks its newest ``SEARCH_WINDOW`` matches and counts those."""
    chosen = _chosen(params)
    rows, counted = await _run(conn, _statements(chosen), params)
    if params.get("q") is not None and counted["total"] < SEARCH_WINDOW and not counted["whole"]:
        # A word too rare for the newest documents, in an index larger than them.
        rows, counted = await _run(conn, _statements(chosen, everything=True), params)
    return rows, int(counted["total"])


async def _run(
    conn: Connection, statements: tuple[bytes, bytes], params: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The page's rows, and the row that counts them (a search page carries its count)."""
    page, count = statements
    # prepare=False: planned with this page's values every time; a generic plan, cached
    # for the statement, would fit a common tag and a rare one alike, and be wrong for one.
    rows = await (await conn.execute(page, params, prepare=False)).fetchall()
    if rows and "total" in rows[0]:
        return rows, rows[0]
    counted = await (await conn.execute(count, params, prepare=False)).fetchone()
    return rows, counted or {"total": 0}
