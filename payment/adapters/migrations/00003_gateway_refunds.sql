-- The simulated gateway's refunds, one per idempotency key (the order id):
-- asking to refund the same order again returns the first refund.

-- +goose Up
CREATE TABLE gateway_refunds (
    idempotency_key text        PRIMARY KEY,
    refund_id       uuid        NOT NULL UNIQUE,
    charge_id       uuid        NOT NULL REFERENCES gateway_charges (charge_id),
    amount          bigint      NOT NULL,
    refunded_at     timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE gateway_refunds;
