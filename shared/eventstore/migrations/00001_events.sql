-- The events table is both the event store and the transactional outbox:
-- a command appends its events here in one transaction, and the forwarder
-- reads the same rows to publish them. There is no second outbox table.

-- +goose Up
CREATE TABLE events (
    global_position bigserial   PRIMARY KEY,
    -- The writing transaction's id. Readers only see rows whose transaction
    -- is older than every transaction still open (pg_snapshot_xmin), so an
    -- event that took an early position but committed late is never skipped.
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text        NOT NULL CHECK (stream_id <> ''),
    stream_version  bigint      NOT NULL CHECK (stream_version > 0),
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL CHECK (event_type <> ''),
    schema_version  integer     NOT NULL CHECK (schema_version > 0),
    payload         jsonb       NOT NULL,
    correlation_id  text        NOT NULL DEFAULT '',
    -- W3C trace context (traceparent, tracestate) and other message metadata.
    metadata        jsonb       NOT NULL DEFAULT '{}',
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- Optimistic concurrency: two appends at the same version cannot both win.
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

-- Keyset reads in commit order: (transaction_id, global_position) > (last read).
CREATE INDEX events_transaction_position_idx ON events (transaction_id, global_position);

-- Read positions of the event-store readers (the forwarder), one row per
-- consumer group, in the shape Watermill's PostgreSQL offsets adapter uses.
CREATE TABLE outbox_offsets (
    consumer_group                varchar(255) PRIMARY KEY,
    offset_acked                  bigint,
    last_processed_transaction_id xid8         NOT NULL
);

-- +goose Down
DROP TABLE outbox_offsets;
DROP TABLE events;
