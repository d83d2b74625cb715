// Package outbox forwards the events in the event store to Kafka. The events
// table is the outbox: a Watermill SQL subscriber reads it through
// EventsSchemaAdapter, and a Watermill router publishes every event to the
// Kafka topic its route picks, keyed by its stream id.
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/postgres"
)

// EventsTopic is the Watermill SQL topic name under which the events table is read.
const EventsTopic = "events"

// EventsSchemaAdapter lets a Watermill SQL subscriber read the events table as
// a topic. It reads in (transaction_id, global_position) order with a keyset
// condition, so each batch costs the same however large the unread backlog,
// and only sees transactions older than every one still open, so an event
// committed after a later-numbered one is never skipped.
type EventsSchemaAdapter struct {
	// BatchSize is how many events one query reads; DefaultBatchSize if zero.
	BatchSize int
}

// SelectQuery reads the next batch after the consumer group's position, with
// the query every reader of the event store uses
// (eventstore.CommitOrderQuery). The read transaction holds the group's lock
// (see groupLocked) so that two forwarders in the same group never send the
// same batch at the same time.
func (a EventsSchemaAdapter) SelectQuery(topic string, consumerGroup string, offsets wsql.OffsetsAdapter) wsql.Query {
	next := offsets.NextOffsetQuery(topic, consumerGroup)
	return wsql.Query{
		Query: `WITH last_processed AS (` + next.Query + `)
		` + eventstore.CommitOrderQuery(forwardedColumns,
			`((SELECT last_processed_transaction_id FROM last_processed), (SELECT offset_acked FROM last_processed))`,
			strconv.Itoa(a.batchSize())),
		Args: append([]any{postgres.PlanEveryRun}, next.Args...),
	}
}

func (a EventsSchemaAdapter) batchSize() int {
	if a.BatchSize <= 0 {
		return DefaultBatchSize
	}
	return a.BatchSize
}

// readAfter reads the batch after position p within tx, the subscriber's
// read transaction: the same query as SelectQuery's, from a position rather
// than the stored offset, and the same batch message as UnmarshalMessage's
// (nil if there is no event after p yet). The forwarder reads ahead with it
// (see Forwarder.forward). Given tx's connection, it reads through pgx
// itself, taking each row's columns as the bytes PostgreSQL sent (in text
// format): database/sql's scanning made a Go value of each column first
// and then copied it, half the cost of a read.
func (a EventsSchemaAdapter) readAfter(ctx context.Context, tx *sql.Tx, conn *sql.Conn, p eventstore.Position) (*message.Message, error) {
	query := eventstore.CommitOrderQuery(forwardedColumns, `($1::text::xid8, $2::bigint)`, strconv.Itoa(a.batchSize()))
	txID := strconv.FormatUint(p.TransactionID, 10)
	if conn != nil {
		var payload []byte
		// Raw holds the connection as a statement of tx would, so nothing
		// of database/sql uses it meanwhile (a rollback when tx's context
		// ends waits for it).
		err := withPgx(conn, func(c *pgx.Conn) error {
			rows, err := c.Query(ctx, query, postgres.PlanEveryRun, pgx.QueryResultFormats{pgx.TextFormatCode}, txID, p.GlobalPosition)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				payload = appendRow(payload, rows.RawValues())
			}
			return rows.Err()
		})
		switch {
		case errors.Is(err, errNotPgx): // read through database/sql below
		case err != nil:
			return nil, fmt.Errorf("outbox: read events: %w", err)
		case payload == nil:
			return nil, nil
		default:
			return message.NewMessage(watermill.NewULID(), payload), nil
		}
	}
	rows, err := tx.QueryContext(ctx, query, postgres.PlanEveryRun, txID, p.GlobalPosition)
	if err != nil {
		return nil, fmt.Errorf("outbox: read events: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	row, err := a.UnmarshalMessage(rows)
	if err != nil {
		return nil, err
	}
	return row.Msg, nil
}

var errNotPgx = errors.New("outbox: not a pgx connection")

// withPgx runs fn on pgx's connection under conn, held as a statement
// would hold it; errNotPgx if conn's driver is not pgx's.
func withPgx(conn *sql.Conn, fn func(*pgx.Conn) error) error {
	return conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return errNotPgx
		}
		return fn(c.Conn())
	})
}

// forwardedColumns are the columns of each event in a batch message (see
// batchEvents): what goes to Kafka and the event's position, all as text.
// Fewer than eventstore.SelectColumns (no recorded_at) because every row of
// a batch is scanned through database/sql before its first event is sent.
// The transaction id is text under another name for the reason
// SelectColumns gives.
const forwardedColumns = `global_position, transaction_id::text AS transaction_id_text, stream_id, stream_version,
	event_id::text, event_type, schema_version, payload, correlation_id, metadata`

// batchRows is what the SQL subscriber hands UnmarshalMessage: its *sql.Rows.
type batchRows interface {
	wsql.Scanner
	Next() bool
	Err() error
}

// UnmarshalMessage turns every row the query returned into one batch
// message (see batchEvents): the subscriber hands it the first row, and it
// reads the others itself, so the subscriber finds no more rows after it.
// Each column is scanned as raw bytes into the same variables, row after
// row, and appended to the message's payload: no allocation per column.
func (a EventsSchemaAdapter) UnmarshalMessage(row wsql.Scanner) (wsql.Row, error) {
	rows, ok := row.(batchRows)
	if !ok {
		return wsql.Row{}, fmt.Errorf("outbox: EventsSchemaAdapter reads a whole batch and needs the query's rows, not a %T", row)
	}
	var cols [batchColumns]sql.RawBytes
	var dest [batchColumns]any
	for i := range cols {
		dest[i] = &cols[i]
	}
	var payload []byte
	var last int64
	for more := true; more; more = rows.Next() {
		if err := rows.Scan(dest[:]...); err != nil {
			return wsql.Row{}, fmt.Errorf("outbox: scan event: %w", err)
		}
		var err error
		if last, err = strconv.ParseInt(string(cols[0]), 10, 64); err != nil {
			return wsql.Row{}, fmt.Errorf("outbox: global position %q: %w", cols[0], err)
		}
		payload = appendRow(payload, cols[:])
	}
	if err := rows.Err(); err != nil {
		return wsql.Row{}, fmt.Errorf("outbox: read events: %w", err)
	}
	batch := message.NewMessage(watermill.NewULID(), payload)
	return wsql.Row{
		// Not stored (the forwarder's offsets adapter stores the position
		// Kafka confirmed), but the subscriber takes 0 for nothing read.
		Offset: last,
		UUID:   []byte(batch.UUID),
		Msg:    batch,
	}, nil
}

// InsertQuery is not supported: events are appended with eventstore.Append,
// which checks the stream version, never through a Watermill publisher.
func (a EventsSchemaAdapter) InsertQuery(string, message.Messages) (wsql.Query, error) {
	return wsql.Query{}, errors.New("outbox: append events with eventstore.Append, not a Watermill publisher")
}

// SchemaInitializingQueries returns nothing: the schema comes from migrations.
func (a EventsSchemaAdapter) SchemaInitializingQueries(string) []wsql.Query { return nil }

// SubscribeIsolationLevel is read committed: the batch is one statement,
// so it comes from one snapshot, and that snapshot is taken after the
// transaction's first statement has waited for the group's lock (under
// repeatable read the snapshot would be the lock statement's, taken before
// the wait, and miss the offset the previous holder stored).
func (a EventsSchemaAdapter) SubscribeIsolationLevel() sql.IsolationLevel {
	return sql.LevelReadCommitted
}
