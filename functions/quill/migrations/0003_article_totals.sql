-- The number of all articles, kept by triggers, so the unfiltered list's articlesCount
-- is a read of eight rows instead of a count over the whole table (flat at 1M articles).
-- Eight slots, chosen by backend pid: writers on different connections do not queue on
-- one row lock; a slot may go negative (deleted elsewhere), only the sum means anything.
CREATE TABLE article_totals (
    slot     smallint PRIMARY KEY CHECK (slot BETWEEN 0 AND 7),
    articles bigint NOT NULL
);
INSERT INTO article_totals (slot, articles) SELECT slot, 0 FROM generate_series(0, 7) AS slot;
UPDATE article_totals SET articles = (SELECT count(*) FROM articles) WHERE slot = 0;

-- Statement-level with transition tables: a COPY of a million rows or a cascaded
-- account deletion updates the total once, not once per row.
CREATE FUNCTION article_totals_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE article_totals SET articles = articles + (SELECT count(*) FROM added_articles)
    WHERE slot = pg_backend_pid() % 8;
    RETURN NULL;
END
$$;

CREATE FUNCTION article_totals_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE article_totals SET articles = articles - (SELECT count(*) FROM removed_articles)
    WHERE slot = pg_backend_pid() % 8;
    RETURN NULL;
END
$$;

CREATE TRIGGER article_totals_on_insert AFTER INSERT ON articles
    REFERENCING NEW TABLE AS added_articles
    FOR EACH STATEMENT EXECUTE FUNCTION article_totals_added();
CREATE TRIGGER article_totals_on_delete AFTER DELETE ON articles
    REFERENCING OLD TABLE AS removed_articles
    FOR EACH STATEMENT EXECUTE FUNCTION article_totals_removed();

CREATE FUNCTION article_totals_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE article_totals SET articles = 0;
    RETURN NULL;
END
$$;

CREATE TRIGGER article_totals_on_truncate AFTER TRUNCATE ON articles
    FOR EACH STATEMENT EXECUTE FUNCTION article_totals_reset();
