-- One appending transaction at a time notifies 'events', not every one.
--
-- A transaction that notifies takes a lock of the whole server at commit
-- and holds it until its commit is flushed to disk, so that notifications
-- are queued in commit order: notifying transactions commit one after the
-- other and never share a WAL flush. With a notification in every append,
-- 32 writers committed 4,600 to 5,100 one-row appends a second here,
-- against 14,800 to 15,200 without (pgbench, 2 cores, 2026-12-01).
--
-- So an append notifies only if no other append that notifies is still in
-- progress: the transaction-scoped advisory lock below is free. The others
-- commit alongside it and are read on the reader's wake-up or, if they
-- commit after it, within the reader's poll interval: a reader polls for a
-- while after each notification (see shared/outbox/wakeup.go). Holding the
-- lock costs the holder nothing and makes no one wait (the others only try).
-- If the one that notifies rolls back (a version conflict), the appends that
-- committed beside it are read at the reader's next poll: within its poll
-- interval while appends come, its idle poll interval (1 s) at the most.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_try_advisory_xact_lock(hashtextextended('events/notify', 0)) THEN
        PERFORM pg_notify('events', '');
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd
