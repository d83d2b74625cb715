-- One table for the positions of every reader of the event store: the
-- forwarder's consumer groups (until now in outbox_offsets, in the shape of
-- Watermill's offsets adapter) and the order service's projections (until
-- now in projection_checkpoints; the order service's migration 00006 moves
-- them here). One lag query reads it for all of them
-- (eventstore.ReaderStatuses). The positions move across unchanged, so no
-- reader starts again from the first event nor skips one.
--
-- Deploying: run the migrations, then start the new version. A replica of
-- the previous version still running finds outbox_offsets gone and stops
-- forwarding (its errors are logged) until it is replaced; it skips nothing.

-- +goose Up
CREATE TABLE reader_positions (
    -- The forwarder's consumer group or the projection's name.
    reader          text        PRIMARY KEY,
    -- The position of the last event the reader is done with, in commit
    -- order: (transaction_id, global_position); (0, 0) before the first.
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Why the reader's last batch failed, for readers that record it (the
    -- projector); cleared by the next batch that succeeds.
    last_error      text,
    last_error_at   timestamptz
);

INSERT INTO reader_positions (reader, transaction_id, global_position)
SELECT consumer_group, last_processed_transaction_id, coalesce(offset_acked, 0) FROM outbox_offsets;

DROP TABLE outbox_offsets;

-- +goose Down
CREATE TABLE outbox_offsets (
    consumer_group                varchar(255) PRIMARY KEY,
    offset_acked                  bigint,
    last_processed_transaction_id xid8         NOT NULL
);
-- The projections' rows went back with the order service's migrations,
-- which are rolled back first.
INSERT INTO outbox_offsets (consumer_group, offset_acked, last_processed_transaction_id)
SELECT reader, global_position, transaction_id FROM reader_positions;

DROP TABLE reader_positions;
