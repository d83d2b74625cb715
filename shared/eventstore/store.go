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

// NotifyChannel is the PostgreSQL channel every append notifies when its
// transaction commits (a trigger from the migrations): readers LISTEN on it
// to read new events at once instead of polling tightly.
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
	if origin.Metadata == nil {
		origin.Metadata = map[string]string{}
	}
	metadata, err := json.Marshal(origin.Metadata)
	if err != nil {
		return fmt.Errorf("eventstore: encode metadata: %w", err)
	}
	n := len(events)
	versions, ids, types, schemas, payloads := make([]int64, n), make([]string, n), make([]string, n), make([]int32, n), make([]string, n)
	for i, e := range events {
		versions[i] = expectedVersion + int64(i) + 1
		ids[i], types[i], schemas[i], payloads[i] = e.ID, e.Type, int32(e.SchemaVersion), string(e.Payload)
	}
	// One round trip: the rows are inserted only if the stream is at the
	// expected version (a stream behind it would otherwise get a gap); a
	// writer that got there first in the meantime trips the unique index.
	tag, err := db.Exec(ctx, `
		INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, correlation_id, metadata)
		SELECT $1, version, id, type, schema, payload, $7, $8
		FROM unnest($2::bigint[], $3::uuid[], $4::text[], $5::int[], $6::jsonb[]) AS e(version, id, type, schema, payload)
		WHERE (SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = $1) = $9
		ORDER BY version`,
		streamID, versions, ids, types, schemas, payloads, origin.CorrelationID, string(metadata), expectedVersion,
	)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.ConstraintName == "events_stream_version_key":
		return fmt.Errorf("%w: stream %s was appended to concurrently at version %d", ErrVersionConflict, streamID, expectedVersion)
	case err != nil:
		return fmt.Errorf("eventstore: append to %s: %w", streamID, err)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("%w: stream %s is not at version %d", ErrVersionConflict, streamID, expectedVersion)
	}
	return nil
}

// Load returns every event of a stream in version order, or ErrStreamNotFound.
func Load(ctx context.Context, db DB, streamID string) ([]RecordedEvent, error) {
	events, err := query(ctx, db, selectEvents+` WHERE stream_id = $1 ORDER BY stream_version`, streamID)
	if err != nil {
		return nil, fmt.Errorf("eventstore: load %s: %w", streamID, err)
	}
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
	events, err := query(ctx, db, readAll,
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
