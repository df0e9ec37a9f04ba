-- The local broker of `quill dev` (unused in a cluster, where Knative's broker runs):
-- every accepted event and one delivery per matching Trigger, so nothing accepted is
-- lost when `quill dev` restarts.
--
-- The runtime migration 0002_events created these same tables until the tooling got its
-- own migrations. An applied migration never changes (quill.migrate checks its checksum),
-- so 0002 still does on every database, and IF NOT EXISTS makes this file a no-op there.
-- Change these tables here, in a new dev_ file, never in quill/migrations.
CREATE TABLE IF NOT EXISTS broker_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    broker      text NOT NULL,
    event       jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS broker_deliveries (
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
CREATE INDEX IF NOT EXISTS broker_deliveries_due_idx ON broker_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS broker_deliveries_event_idx ON broker_deliveries (event_pk);
