-- The projections' checkpoints move into the event store's one table of
-- reader positions, reader_positions (created by the event store's
-- migration 00003, which runs before these), as they are: position, when
-- it moved, the last error. No projection starts again from the first
-- event nor skips one.
--
-- Deploying: run the migrations, then start the new version. A replica of
-- the previous version still running finds projection_checkpoints gone and
-- its projector retries (logging why) until it is replaced; it skips nothing.

-- +goose Up
INSERT INTO reader_positions (reader, transaction_id, global_position, updated_at, last_error, last_error_at)
SELECT name, transaction_id, global_position, updated_at, last_error, last_error_at FROM projection_checkpoints;

DROP TABLE projection_checkpoints;

-- +goose Down
CREATE TABLE projection_checkpoints (
    name            text        PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    last_error_at   timestamptz
);
INSERT INTO projection_checkpoints (name, transaction_id, global_position, updated_at, last_error, last_error_at)
SELECT reader, transaction_id, global_position, updated_at, last_error, last_error_at FROM reader_positions
WHERE reader IN ('order_summaries', 'order_daily_stats');
DELETE FROM reader_positions WHERE reader IN ('order_summaries', 'order_daily_stats');
