-- Events a projection passed over because their type (or schema version) is
-- newer than the code that applied them: written by a newer version of the
-- service during a rolling deploy. Counted per projection and type in the
-- same transaction as the batch, so the counts are exact on any number of
-- replicas; `order projections` and /metrics show them. A replay rebuilds
-- the counts with the table (under "<name>_rebuild" until the swap).

-- +goose Up
CREATE TABLE projection_skipped_events (
    projection     text        NOT NULL,
    event_type     text        NOT NULL,
    schema_version int         NOT NULL,
    events         bigint      NOT NULL,
    last_event_id  uuid        NOT NULL,
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, event_type, schema_version)
);

-- +goose Down
DROP TABLE projection_skipped_events;
