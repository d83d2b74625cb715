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
-- The columns of reader_positions are those of projection_checkpoints, the
-- first one named reader instead of name.
CREATE TABLE projection_checkpoints (LIKE reader_positions INCLUDING DEFAULTS);
ALTER TABLE projection_checkpoints RENAME COLUMN reader TO name;
ALTER TABLE projection_checkpoints ADD PRIMARY KEY (name);
INSERT INTO projection_checkpoints
SELECT * FROM reader_positions WHERE reader IN ('order_summaries', 'order_daily_stats');
DELETE FROM reader_positions WHERE reader IN ('order_summaries', 'order_daily_stats');
