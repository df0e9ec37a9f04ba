-- A tag's newest articles straight from one index: article_tags carries its article's
-- created_at (set on insert, never changed after), so ?tag=x reads the first page of
-- (tag, created_at DESC) instead of walking every article newest-first probing for x.
ALTER TABLE article_tags ADD COLUMN created_at timestamptz;
UPDATE article_tags t SET created_at = a.created_at FROM articles a WHERE a.id = t.article_id;
ALTER TABLE article_tags ALTER COLUMN created_at SET NOT NULL;
CREATE INDEX article_tags_tag_created_idx ON article_tags (tag, created_at DESC, article_id DESC);
-- The new index leads with tag too: it serves the per-tag count as well.
DROP INDEX article_tags_tag_idx;
