-- article_tags (the ?tag= index) follows articles.tag_list by trigger, as tag_totals does:
-- a write changes tag_list alone, in the one statement that also stores its event.
-- A statement's own snapshot cannot do it for an edit: an edit that waited for another
-- edit of the same article would not see the tag rows that one added. The trigger's
-- statements run after the row is locked, each with a snapshot that does.
CREATE FUNCTION article_tags_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO article_tags (article_id, tag, created_at)
    SELECT DISTINCT id, unnest(tag_list), created_at FROM added_articles
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE FUNCTION article_tags_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM article_tags WHERE article_id = NEW.id AND tag <> ALL (NEW.tag_list);
    INSERT INTO article_tags (article_id, tag, created_at)
    SELECT DISTINCT NEW.id, unnest(NEW.tag_list), NEW.created_at
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER article_tags_on_insert AFTER INSERT ON articles
    REFERENCING NEW TABLE AS added_articles
    FOR EACH STATEMENT EXECUTE FUNCTION article_tags_added();
CREATE TRIGGER article_tags_on_change AFTER UPDATE OF tag_list ON articles
    FOR EACH ROW WHEN (OLD.tag_list IS DISTINCT FROM NEW.tag_list)
    EXECUTE FUNCTION article_tags_changed();
