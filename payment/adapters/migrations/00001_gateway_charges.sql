-- The simulated payment gateway's ledger. A real provider keeps this on its
-- side; here it lives in the payment database so that charges survive
-- restarts and can be counted. One row per idempotency key: asking to charge
-- the same key again returns the first charge.

-- +goose Up
CREATE TABLE gateway_charges (
    idempotency_key text        PRIMARY KEY,
    charge_id       uuid        NOT NULL UNIQUE,
    amount          bigint      NOT NULL,
    currency        text        NOT NULL,
    approved        boolean     NOT NULL,
    decline_reason  text        NOT NULL DEFAULT '',
    charged_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE gateway_charges;
