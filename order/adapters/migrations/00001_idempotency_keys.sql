-- Idempotency keys of POST /v1/orders: a retried request with the same key
-- and body gets the order it created the first time, without a second event.
-- Written in the same transaction as the order's events.

-- +goose Up
CREATE TABLE idempotency_keys (
    key          text        PRIMARY KEY,
    request_hash text        NOT NULL,
    order_id     uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE idempotency_keys;
