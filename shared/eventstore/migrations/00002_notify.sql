-- Wake readers of the event store without tight polling: every statement
-- that appends events notifies the channel 'events'. PostgreSQL delivers a
-- notification when the appending transaction commits (never if it rolls
-- back), and folds repeats within one transaction into one.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('events', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- +goose Down
DROP TRIGGER events_notify ON events;
DROP FUNCTION events_notify();
