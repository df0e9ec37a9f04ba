-- tagList is returned in alphabetical order (the RealWorld suites check it). New lists are
-- stored sorted by code point (Python's sorted(), the same as COLLATE "C"); this sorts the
-- lists stored before, so no read has to sort.
UPDATE articles
SET tag_list = ARRAY(SELECT tag FROM unnest(tag_list) AS tag ORDER BY tag COLLATE "C")
WHERE tag_list <> ARRAY(SELECT tag FROM unnest(tag_list) AS tag ORDER BY tag COLLATE "C");
