"""The full-text index behind ``GET /api/articles?q=``. Owns ``search_documents``.

The ``search`` function rebuilds an article's document from the ``articles`` row
itself, not from the event's data, so events arriving twice or out of order leave
the index matching the current article.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from psycopg import sql

if TYPE_CHECKING:
    from quill.consumer import Claim
    from quill.domain.outbox import Transaction


__all__ = ["CONFIG", "DOCUMENT", "REINDEXED", "reindex"]

# A change with no event of its own (``Transaction.changed``): the article's document changed.
REINDEXED = "quill.search.reindexed"

CONFIG = "english"

# An article's document, from its row ``a``: also used by the benchmark's bulk seeder.
DOCUMENT = """setweight(to_tsvector('english', a.title), 'A')
       || setweight(to_tsvector('english', a.description || ' ' || array_to_string(a.tag_list, ' ')), 'B')
       || setweight(to_tsvector('english', a.body), 'C')"""

# After the consumer's claim (``Claim.cte``, which opens the WITH list): the article's
# document from its row, or, for an article that is gone, none. Both only when the
# claim was taken, so a duplicate changes nothing.
_REINDEX = sql.SQL("""
indexed AS (
    INSERT INTO search_documents (article_id, document, indexed_at)
    SELECT a.id, {document}, clock_timestamp()
    FROM articles a WHERE a.id = %(article_id)s AND EXISTS (SELECT FROM claim)
    ON CONFLICT (article_id) DO UPDATE SET document = EXCLUDED.document, indexed_at = EXCLUDED.indexed_at
    RETURNING article_id
), forgotten AS (
    DELETE FROM search_documents
    WHERE article_id = %(article_id)s AND EXISTS (SELECT FROM claim)
      AND NOT EXISTS (SELECT FROM articles WHERE id = %(article_id)s)
    RETURNING article_id
)
SELECT EXISTS (SELECT FROM claim) AS claimed
""").format(document=sql.SQL(DOCUMENT))


@functools.cache
def _reindex(claim: str) -> str:
    return sql.SQL("WITH {claim},{reindex}").format(claim=sql.SQL(claim), reindex=_REINDEX).as_string(None)


async def reindex(tx: Transaction, article_id: int, claim: Claim) -> bool:
    """Index the article as it is now (a deleted article leaves the index), in the same
    statement as the consumer's ``claim``; answer whether the claim was taken. Search pages
    built before the reindex miss the change: ``reads.stale`` drops them after commit."""
    params = claim.params()
    params["article_id"] = article_id
    cursor = await tx.conn.execute(_reindex(claim.cte), params)
    row = await cursor.fetchone()
    claimed = bool(row and row["claimed"])
    if claimed:
        tx.changed(REINDEXED, {"id": article_id})
    return claimed
