"""The full-text index behind ``GET /api/articles?q=``. Owns ``search_documents``.

The ``search`` function rebuilds an article's document from the ``articles`` row
itself, not from the event's data, so events arriving twice or out of order leave
the index matching the current article.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

if TYPE_CHECKING:
    from quill.domain.outbox import Transaction


__all__ = ["CONFIG", "DOCUMENT", "REINDEXED", "reindex"]

# A change with no event of its own (``Transaction.changed``): the article's document changed.
REINDEXED = "quill.search.reindexed"

CONFIG = "english"

# An article's document, from its row ``a``: also used by the benchmark's bulk seeder.
DOCUMENT = """setweight(to_tsvector('english', a.title), 'A')
       || setweight(to_tsvector('english', a.description || ' ' || array_to_string(a.tag_list, ' ')), 'B')
       || setweight(to_tsvector('english', a.body), 'C')"""

_REINDEX = (
    sql.SQL("""
INSERT INTO search_documents (article_id, document, indexed_at)
SELECT a.id,
       {document},
       clock_timestamp()
FROM articles a WHERE a.id = %s
ON CONFLICT (article_id) DO UPDATE SET document = EXCLUDED.document, indexed_at = EXCLUDED.indexed_at
""")
    .format(document=sql.SQL(DOCUMENT))
    .as_string(None)
)
_FORGET = "DELETE FROM search_documents WHERE article_id = %s"


async def reindex(tx: Transaction, article_id: int) -> None:
    """Index the article as it is now; a deleted article leaves the index. Search pages
    built before the reindex miss the change: ``reads.stale`` drops them after commit."""
    cursor = await tx.conn.execute(_REINDEX, (article_id,))
    if cursor.rowcount == 0:
        await tx.conn.execute(_FORGET, (article_id,))
    tx.changed(REINDEXED, {"id": article_id})
