-- Events: the transactional outbox, consumer de-duplication, the search index, the
-- dead-letter store, and the tables of the local broker that `quill dev` runs.

-- Events written in the same transaction as the change they describe; published to
-- K_SINK right after commit, or later by the `outbox` function.
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    type         text NOT NULL,
    source       text NOT NULL,
    subject      text NOT NULL,
    data         jsonb NOT NULL,
    traceparent  text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at timestamptz,
    -- a sender's lease: the row is being sent until then (no connection is held meanwhile);
    -- only the sender holding claim_token may mark it sent or failed
    claimed_until timestamptz,
    claim_token  text,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE published_at IS NULL;

-- One row per (consumer, event): a redelivered event finds its row and changes nothing.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    source       text NOT NULL,
    event_id     text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, source, event_id)
);
CREATE INDEX processed_events_age_idx ON processed_events (processed_at);

-- The full-text index the `search` function keeps, behind GET /api/articles?q=.
CREATE TABLE search_documents (
    article_id bigint PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    document   tsvector NOT NULL,
    indexed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX search_documents_document_idx ON search_documents USING gin (document);

-- Undeliverable events, parked by the `deadletter` function until a person replays them.
CREATE TABLE dead_letters (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event        jsonb NOT NULL,
    error_code   text,
    error_data   text,
    error_dest   text,
    received_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    replayed_at  timestamptz,
    replay_count integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX dead_letters_event_key ON dead_letters ((event ->> 'source'), (event ->> 'id'), (error_dest));

-- The local broker of `quill dev` (unused in a cluster, where Knative's broker runs):
-- every accepted event and one delivery per matching Trigger, so nothing accepted is
-- lost when `quill dev` restarts.
CREATE TABLE broker_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    broker      text NOT NULL,
    event       jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE broker_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_pk        bigint NOT NULL REFERENCES broker_events (id) ON DELETE CASCADE,
    trigger         text NOT NULL,
    subscriber      text NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    -- true once the subscriber gave up: the delivery now goes to the dead-letter sink
    dead_lettering  boolean NOT NULL DEFAULT false,
    error_code      integer,
    error_data      text,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_status     integer,
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX broker_deliveries_due_idx ON broker_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX broker_deliveries_event_idx ON broker_deliveries (event_pk);
