-- How many articles carry each tag, kept by triggers on articles: ?tag= counts and
-- GET /api/tags read a few rows per tag instead of every article_tags entry.
-- Slots by backend pid as in article_totals, so writers on different connections do
-- not queue on a popular tag's row. Each trigger changes its tags in one statement,
-- in tag order, so two writers never lock the same rows in opposite orders.
CREATE TABLE tag_totals (
    tag      text NOT NULL,
    slot     smallint NOT NULL CHECK (slot BETWEEN 0 AND 7),
    articles bigint NOT NULL,
    PRIMARY KEY (tag, slot)
);
INSERT INTO tag_totals (tag, slot, articles) SELECT tag, 0, count(*) FROM article_tags GROUP BY tag;

CREATE FUNCTION tag_totals_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tag_totals AS t (tag, slot, articles)
    SELECT tag, pg_backend_pid() % 8, count(*)
    FROM (SELECT DISTINCT id, unnest(tag_list) AS tag FROM added_articles) AS tagged
    GROUP BY tag ORDER BY tag
    ON CONFLICT (tag, slot) DO UPDATE SET articles = t.articles + excluded.articles;
    RETURN NULL;
END
$$;

CREATE FUNCTION tag_totals_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tag_totals AS t (tag, slot, articles)
    SELECT tag, pg_backend_pid() % 8, -count(*)
    FROM (SELECT DISTINCT id, unnest(tag_list) AS tag FROM removed_articles) AS tagged
    GROUP BY tag ORDER BY tag
    ON CONFLICT (tag, slot) DO UPDATE SET articles = t.articles + excluded.articles;
    RETURN NULL;
END
$$;

-- Per row (transition tables cannot go with a column list), and only when the tags
-- changed: favorites and edits of other fields never touch tag_totals.
CREATE FUNCTION tag_totals_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tag_totals AS t (tag, slot, articles)
    SELECT tag, pg_backend_pid() % 8, sum(delta)
    FROM (
        SELECT DISTINCT unnest(NEW.tag_list) AS tag, 1 AS delta
        UNION ALL
        SELECT DISTINCT unnest(OLD.tag_list), -1
    ) AS changes
    GROUP BY tag HAVING sum(delta) <> 0 ORDER BY tag
    ON CONFLICT (tag, slot) DO UPDATE SET articles = t.articles + excluded.articles;
    RETURN NULL;
END
$$;

CREATE FUNCTION tag_totals_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM tag_totals;
    RETURN NULL;
END
$$;

CREATE TRIGGER tag_totals_on_insert AFTER INSERT ON articles
    REFERENCING NEW TABLE AS added_articles
    FOR EACH STATEMENT EXECUTE FUNCTION tag_totals_added();
CREATE TRIGGER tag_totals_on_delete AFTER DELETE ON articles
    REFERENCING OLD TABLE AS removed_articles
    FOR EACH STATEMENT EXECUTE FUNCTION tag_totals_removed();
CREATE TRIGGER tag_totals_on_change AFTER UPDATE OF tag_list ON articles
    FOR EACH ROW WHEN (OLD.tag_list IS DISTINCT FROM NEW.tag_list)
    EXECUTE FUNCTION tag_totals_changed();
CREATE TRIGGER tag_totals_on_truncate AFTER TRUNCATE ON articles
    FOR EACH STATEMENT EXECUTE FUNCTION tag_totals_reset();
