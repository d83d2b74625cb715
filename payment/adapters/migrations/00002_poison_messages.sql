-- This migration created the poison_messages table while the poison queue
-- was the payment service's own. The table now comes from the poison store
-- that both services share (shared/poison/poisonstore, "CREATE TABLE IF NOT
-- EXISTS", the same shape): databases this migration ran on keep the table
-- it made, and new ones get it from there.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
