-- Read models fed from the event store by the projector (see
-- order/adapters/projections). They can be dropped and rebuilt from the
-- events at any time with `order replay`.
--
-- Index names must be PostgreSQL's defaults (table_columns_idx, table_pkey):
-- a replay builds a new table LIKE the live one and, after swapping it in,
-- renames its indexes back to those names, so that later migrations can
-- refer to them.

-- +goose Up

-- One row per order: what GET /v1/orders lists, newest first.
CREATE TABLE order_summaries (
    order_id    text        PRIMARY KEY,
    customer_id text        NOT NULL,
    status      text        NOT NULL,
    currency    text        NOT NULL,
    total       bigint      NOT NULL,
    -- Units ordered: the sum of the line items' quantities.
    item_count  bigint      NOT NULL,
    placed_at   timestamptz NOT NULL,
    -- When the order's latest event was recorded.
    updated_at  timestamptz NOT NULL,
    -- The order's stream version: the number of events applied.
    version     bigint      NOT NULL
);
CREATE INDEX order_summaries_placed_at_order_id_idx ON order_summaries (placed_at, order_id);
CREATE INDEX order_summaries_customer_id_placed_at_order_id_idx ON order_summaries (customer_id, placed_at, order_id);
CREATE INDEX order_summaries_status_placed_at_order_id_idx ON order_summaries (status, placed_at, order_id);

-- Orders and revenue per day placed (UTC), current status and currency: each
-- order counts once, in the status it is in now.
CREATE TABLE order_daily_stats (
    day      date   NOT NULL,
    status   text   NOT NULL,
    currency text   NOT NULL,
    orders   bigint NOT NULL CHECK (orders >= 0),
    -- The sum of those orders' totals, in minor units of currency.
    revenue  bigint NOT NULL,
    PRIMARY KEY (day, status, currency)
);

-- +goose Down
DROP TABLE order_daily_stats;
DROP TABLE order_summaries;
