-- One canonical form of an email, stored and compared as is (quill.domain.users.canonical_email):
-- NFC, ASCII letters lowered, nothing else changed. lower() folded by the server's locale and
-- Python by Unicode, so U+0130 gave one account two spellings, each with its own login limit.
-- This function is the same rule in SQL, for the rows stored before; a test keeps both equal.
CREATE FUNCTION quill_canonical_email(email text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT translate(normalize(email, NFC), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') $$;

UPDATE users SET email = quill_canonical_email(email) WHERE email <> quill_canonical_email(email);
DROP INDEX users_email_lower_key;
CREATE UNIQUE INDEX users_email_key ON users (email);
