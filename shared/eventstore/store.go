package eventstore

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/es-outbox/reference/shared/postgres"
	"github.com/es-outbox/reference/shared/tracing"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates and evolves the events table and the readers' positions.
var Migrations = postgres.NewMigration(migrationFiles, "migrations", "eventstore_schema_version")

// NotifyChannel is the PostgreSQL channel an append notifies when its
// transaction commits (a trigger from the migrations): readers LISTEN on it
// to read new events at once instead of polling tightly. An append made
// while another one that notifies is still in progress does not notify
// (migrations/00004 says why): readers poll for a while after each
// notification, which finds it.
const NotifyChannel = "events"

// ErrVersionConflict means the stream was not at the expected version: another
// command appended to it first. Reload the stream and decide again.
var ErrVersionConflict = errors.New("stream version conflict")

// ErrStreamNotFound means no event has been appended to the stream.
var ErrStreamNotFound = errors.New("stream not found")

// DB is what the store needs from a connection: a pgx.Tx, a *pgx.Conn or a
// *pgxpool.Pool. Append should be given a transaction, so that the events and
// the state change that caused them commit together.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Append adds events to the end of a stream that must be at expectedVersion
// (0 for a new stream). If another writer got there first, it returns an error
// wrapping ErrVersionConflict and appends nothing.
func Append(ctx context.Context, db DB, streamID string, expectedVersion int64, origin Context, events ...Event) (err error) {
	if len(events) == 0 {
		return nil
	}
	ctx, span := otel.Tracer("github.com/es-outbox/reference/shared/eventstore").Start(ctx, "append events",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.DBSystemNamePostgreSQL, semconv.DBOperationName("INSERT"), semconv.DBCollectionName("events"),
			attribute.String("event_store.stream_id", streamID),
			attribute.Int64("event_store.expected_version", expectedVersion),
			attribute.Int("event_store.events", len(events)),
			attribute.String("event_store.first_event_type", events[0].Type),
		))
	defer func() { tracing.End(span, err) }()
	err = appendStreams(ctx, db, []streamAppend{{streamID, expectedVersion, origin, events}})
	switch {
	case errors.Is(err, errAppendedConcurrently):
		return fmt.Errorf("%w: stream %s was appended to concurrently at version %d", ErrVersionConflict, streamID, expectedVersion)
	case errors.Is(err, ErrVersionConflict):
		return fmt.Errorf("%w: stream %s is not at version %d", ErrVersionConflict, streamID, expectedVersion)
	case err != nil:
		return fmt.Errorf("eventstore: append to %s: %w", streamID, err)
	}
	return nil
}

// streamAppend is one stream's part of an append: its events, the version
// the stream must be at, and what caused them.
type streamAppend struct {
	streamID        string
	expectedVersion int64
	origin          Context
	events          []Event
}

// errAppendedConcurrently is the conflict of an append that passed the
// version check while another writer's rows at the same versions were not
// yet committed: the unique index caught it.
var errAppendedConcurrently = fmt.Errorf("%w: appended to concurrently", ErrVersionConflict)

// appendStreams appends to several streams in one statement, all or none:
// the rows are inserted only if every stream is at its expected version (a
// stream behind it would otherwise get a gap), and a writer that got to one
// of them first in the meantime trips the unique index. It returns
// ErrVersionConflict if a stream was not at its version. The events take
// their positions in the order given. On a pool the statement is its own
// transaction: one commit, however many streams.
func appendStreams(ctx context.Context, db DB, appends []streamAppend) error {
	var streams []string
	var expected []int64
	var eventStreams, ids, types, payloads, correlations, metadata []string
	var versions []int64
	var schemas []int32
	for _, a := range appends {
		streams, expected = append(streams, a.streamID), append(expected, a.expectedVersion)
		if a.origin.Metadata == nil {
			a.origin.Metadata = map[string]string{}
		}
		meta, err := json.Marshal(a.origin.Metadata)
		if err != nil {
			return fmt.Errorf("encode metadata: %w", err)
		}
		for i, e := range a.events {
			eventStreams, versions = append(eventStreams, a.streamID), append(versions, a.expectedVersion+int64(i)+1)
			ids, types, schemas = append(ids, e.ID), append(types, e.Type), append(schemas, int32(e.SchemaVersion))
			payloads, correlations, metadata = append(payloads, string(e.Payload)), append(correlations, a.origin.CorrelationID), append(metadata, string(meta))
		}
	}
	tag, err := db.Exec(ctx, `
		INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, correlation_id, metadata)
		SELECT stream, version, id, type, schema, payload, correlation, metadata
		FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::int[], $6::jsonb[], $7::text[], $8::jsonb[])
			WITH ORDINALITY AS e(stream, version, id, type, schema, payload, correlation, metadata, n)
		WHERE NOT EXISTS (
			SELECT FROM unnest($9::text[], $10::bigint[]) AS s(stream, expected)
			WHERE (SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = s.stream) <> s.expected)
		ORDER BY n`,
		eventStreams, versions, ids, types, schemas, payloads, correlations, metadata, streams, expected,
	)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.ConstraintName == "events_stream_version_key":
		return errAppendedConcurrently
	case err != nil:
		return err
	case tag.RowsAffected() == 0:
		return ErrVersionConflict
	}
	return nil
}

// Load returns every event of a stream in version order, or an error
// wrapping ErrStreamNotFound if it has none.
//
// Within work started on a GroupCommit (GroupCommit.Start: a consumer's
// attempt at a message), a load from the group's pool joins the group's
// loads instead and returns once their one query has read every stream of
// them, with the same answer as alone (or ctx.Err() if ctx is done first).
// A load given a transaction never joins: it reads inside the transaction,
// which sees its own writes.
func Load(ctx context.Context, db DB, streamID string) ([]RecordedEvent, error) {
	if g := loadGroup(ctx, db); g != nil {
		return g.load(ctx, streamID)
	}
	return loadAlone(ctx, db, streamID)
}

// loadAlone is Load with a query of its own.
func loadAlone(ctx context.Context, db DB, streamID string) ([]RecordedEvent, error) {
	events, err := query(ctx, db, selectEvents+` WHERE stream_id = $1 ORDER BY stream_version`, streamID)
	if err != nil {
		return nil, fmt.Errorf("eventstore: load %s: %w", streamID, err)
	}
	return streamFound(streamID, events)
}

// streamFound is a load's answer given the stream's events: them, or
// ErrStreamNotFound if there are none.
func streamFound(streamID string, events []RecordedEvent) ([]RecordedEvent, error) {
	if len(events) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrStreamNotFound, streamID)
	}
	return events, nil
}

// ReadAll returns up to limit events after the given position, in commit
// order. It only returns events whose transaction is older than every
// transaction still in progress, so a later call never finds an event that
// belongs before a position already returned: nothing is skipped.
func ReadAll(ctx context.Context, db DB, after Position, limit int) ([]RecordedEvent, error) {
	events, err := query(ctx, db, readAll, postgres.PlanEveryRun,
		strconv.FormatUint(after.TransactionID, 10), after.GlobalPosition, limit)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read all after %v: %w", after, err)
	}
	return events, nil
}

const selectEvents = `SELECT ` + SelectColumns + ` FROM events`

var readAll = CommitOrderQuery(SelectColumns, `($1::text::xid8, $2)`, `$3`)

func query(ctx context.Context, db DB, sql string, args ...any) ([]RecordedEvent, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (RecordedEvent, error) {
		return ScanEvent(row)
	})
}

// Scanner is a database row: pgx.Row, pgx.Rows or database/sql's *sql.Row(s).
type Scanner interface {
	Scan(dest ...any) error
}

// ScanEvent reads one row selected with the columns of SelectColumns.
func ScanEvent(row Scanner) (RecordedEvent, error) {
	var e RecordedEvent
	var txID string
	var payload, metadata []byte
	if err := row.Scan(&e.Position.GlobalPosition, &txID, &e.StreamID, &e.StreamVersion, &e.ID,
		&e.Type, &e.SchemaVersion, &payload, &e.CorrelationID, &metadata, &e.RecordedAt); err != nil {
		return RecordedEvent{}, err
	}
	tx, err := strconv.ParseUint(txID, 10, 64)
	if err != nil {
		return RecordedEvent{}, fmt.Errorf("transaction id %q: %w", txID, err)
	}
	e.Position.TransactionID = tx
	if err := json.Unmarshal(metadata, &e.Metadata); err != nil {
		return RecordedEvent{}, fmt.Errorf("metadata of event %s: %w", e.ID, err)
	}
	e.Payload = payload
	return e, nil
}

// SelectColumns is the column list ScanEvent expects. The
// transaction id is sent as text under another name: an output column named
// transaction_id would be what ORDER BY transaction_id sorts by, as text
// ("10" before "9"), which reads events out of commit order and cannot use
// the index.
const SelectColumns = `global_position, transaction_id::text AS transaction_id_text, stream_id, stream_version, event_id::text,
	event_type, schema_version, payload, correlation_id, metadata, recorded_at`
