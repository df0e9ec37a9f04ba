-- One canonical form of an email, stored and compared as is (quill.domain.users.canonical_email):
-- NFC, ASCII letters lowered, nothing else changed. lower() folded by the server's locale and
-- Python by Unicode, so U+0130 gave one account two spellings, each with its own login limit.
-- This function is the same rule in SQL, for the rows stored before; a test keeps both equal.
CREATE FUNCTION quill_canonical_email(email text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT translate(normalize(email, NFC), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') $$;

-- Accounts whose emails differ only in Unicode normalisation (a composed and a decomposed
-- "é") become one address: stop with their ids, for a person to merge or change them, rather
-- than pick an owner here. Nothing has changed yet when this stops.
DO $$
DECLARE
    clashes text;
BEGIN
    SELECT string_agg(format('%s (ids %s)', canonical, ids), '; ') INTO clashes
    FROM (
        SELECT quill_canonical_email(email) AS canonical, array_agg(id ORDER BY id)::text AS ids
        FROM users GROUP BY 1 HAVING count(*) > 1
    ) AS clash;
    IF clashes IS NOT NULL THEN
        RAISE EXCEPTION 'accounts share one canonical email: %', clashes
            USING HINT = 'change or merge all but one of each, then run quill migrate again';
    END IF;
END
$$;

UPDATE users SET email = quill_canonical_email(email) WHERE email <> quill_canonical_email(email);
DROP INDEX users_email_lower_key;
CREATE UNIQUE INDEX users_email_key ON users (email);
