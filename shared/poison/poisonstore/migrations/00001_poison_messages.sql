-- The poison store: every record of the service's poison topic
-- (payment.poison, order.poison), kept so that
-- people can list, fix and requeue poisoned messages long after Kafka's
-- retention has dropped them, and so that what was done with each (requeued
-- where, or discarded why, by whom, when) is on record.
--
-- A record is identified by its partition and offset on the poison topic, so
-- a redelivered record is stored once. That relies on Kafka never reusing an
-- offset: if the poison topic is deleted and created again, archive or empty
-- this table first.
--
-- The payment service's own migrations created this table before the poison
-- queue was shared by both services (payment 00002, the same shape): hence
-- IF NOT EXISTS, so that this set changes nothing there.

-- +goose Up
CREATE TABLE IF NOT EXISTS poison_messages (
    poison_topic      text        NOT NULL,
    poison_partition  integer     NOT NULL,
    poison_offset     bigint      NOT NULL,
    id                text        GENERATED ALWAYS AS (poison_partition::text || '-' || poison_offset::text) STORED UNIQUE,
    poisoned_at       timestamptz NOT NULL,
    reason            text        NOT NULL,
    origin_topic      text        NOT NULL,
    origin_partition  integer,    -- NULL when the record does not say
    origin_offset     bigint,
    key               bytea       NOT NULL,
    handler           text        NOT NULL,
    event_type        text        NOT NULL,
    message_id        text        NOT NULL,
    metadata          jsonb       NOT NULL,
    payload           bytea       NOT NULL,
    stored_at         timestamptz NOT NULL DEFAULT now(),
    status            text        NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'requeued', 'discarded')),
    changed_at        timestamptz,
    changed_by        text,
    change_reason     text,
    requeued_to_topic     text,
    requeued_to_partition integer,
    requeued_to_offset    bigint,
    PRIMARY KEY (poison_partition, poison_offset),
    CHECK ((status = 'new') = (changed_at IS NULL))
);

-- Listing by status in time order, and the queue depth (entries still new).
CREATE INDEX IF NOT EXISTS poison_messages_status ON poison_messages (status, poisoned_at);

-- +goose Down
DROP TABLE IF EXISTS poison_messages;
