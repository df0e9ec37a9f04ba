"""The full-text index behind ``GET /api/articles?q=``. Owns ``search_documents``.

The ``search`` function rebuilds an article's document from the ``articles`` row
itself, not from the event's data, so events arriving twice or out of order leave
the index matching the current article.
"""

from __future__ import annotations

from psycopg import sql

from quill.db import Connection

__all__ = ["CONFIG", "DOCUMENT", "reindex"]

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


async def reindex(conn: Connection, article_id: int) -> None:
    """Index the article as it is now; a deleted article leaves the index."""
    cursor = await conn.execute(_REINDEX, (article_id,))
    if cursor.rowcount == 0:
        await conn.execute(_FORGET, (article_id,))
