-- Where each projection (read model) is in the event store's commit order.
-- The projector moves a checkpoint in the same transaction as the read-model
-- rows it wrote, so that a crash neither skips nor repeats an event.

-- +goose Up
CREATE TABLE projection_checkpoints (
    name            text        PRIMARY KEY,
    -- The last applied event's Position: (transaction_id, global_position).
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Why the last batch failed; cleared by the next batch that succeeds.
    last_error      text,
    last_error_at   timestamptz
);

-- +goose Down
DROP TABLE projection_checkpoints;
