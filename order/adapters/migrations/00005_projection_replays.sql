-- Replays started from the operator console, so that every replica shows a
-- rebuild's progress and refuses a second one while it runs (the replay's
-- advisory lock also refuses one started by `order replay`).

-- +goose Up
CREATE TABLE projection_replays (
    projection  text        PRIMARY KEY,
    stage       text        NOT NULL,
    events      bigint      NOT NULL DEFAULT 0,
    total       bigint      NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    -- Moved at every batch and by a heartbeat: a run whose replica died
    -- stops moving and is taken over after a while.
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    error       text
);

-- +goose Down
DROP TABLE projection_replays;
