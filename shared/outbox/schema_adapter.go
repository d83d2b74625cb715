// Package outbox forwards the events in the event store to Kafka. The events
// table is the outbox: a Watermill SQL subscriber reads it through
// EventsSchemaAdapter, and a Watermill router publishes every event to the
// Kafka topic its route picks, keyed by its stream id.
package outbox

import (
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/messaging"
)

// EventsTopic is the Watermill SQL topic name under which the events table is read.
const EventsTopic = "events"

// OffsetsAdapter stores each consumer group's read position in outbox_offsets,
// created by the event store's migrations.
var OffsetsAdapter = wsql.DefaultPostgreSQLOffsetsAdapter{
	GenerateMessagesOffsetsTableName: func(string) string { return "outbox_offsets" },
}

// EventsSchemaAdapter lets a Watermill SQL subscriber read the events table as
// a topic. It reads in (transaction_id, global_position) order with a keyset
// condition, so each batch costs the same however large the unread backlog,
// and only sees transactions older than every one still open, so an event
// committed after a later-numbered one is never skipped.
type EventsSchemaAdapter struct {
	// BatchSize is how many events one query reads; 100 if zero.
	BatchSize int
}

// SelectQuery reads the next batch after the consumer group's offset. The
// offset row is locked (FOR UPDATE) so that two forwarders in the same group
// never send the same batch at the same time. Each row also gets its place
// in the batch and the batch's size, counted after the LIMIT so that the
// count costs nothing however large the backlog: the forwarder settles the
// batch with Kafka at its last event.
func (a EventsSchemaAdapter) SelectQuery(topic string, consumerGroup string, offsets wsql.OffsetsAdapter) wsql.Query {
	next := offsets.NextOffsetQuery(topic, consumerGroup)
	batch := a.BatchSize
	if batch <= 0 {
		batch = 100
	}
	return wsql.Query{
		Query: `
		WITH last_processed AS (` + next.Query + `),
		batch AS (
			SELECT events.*, row_number() OVER (ORDER BY transaction_id, global_position) AS place FROM events
			WHERE (transaction_id, global_position) > (
					(SELECT last_processed_transaction_id FROM last_processed),
					(SELECT offset_acked FROM last_processed))
			  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
			ORDER BY transaction_id, global_position
			LIMIT ` + strconv.Itoa(batch) + `)
		SELECT ` + eventstore.SelectColumns + `, place, count(*) OVER () AS batch_size FROM batch
		ORDER BY place`,
		Args: next.Args,
	}
}

// UnmarshalMessage turns a row into a message whose UUID is the event id and
// whose metadata carries the event's identity, correlation id and trace
// context, and, for the forwarder only, its read place.
func (a EventsSchemaAdapter) UnmarshalMessage(row wsql.Scanner) (wsql.Row, error) {
	var place readPlace
	e, err := eventstore.ScanEvent(withExtraColumns{row, []any{&place.Place, &place.Size}})
	if err != nil {
		return wsql.Row{}, fmt.Errorf("outbox: scan event: %w", err)
	}
	place.Position = e.Position
	msg := message.NewMessage(e.ID, message.Payload(e.Payload))
	// The map decoded from the row is the message's metadata: copying it
	// would cost every event a second map.
	if e.Metadata != nil {
		msg.Metadata = e.Metadata
	}
	msg.Metadata.Set(messaging.EventIDKey, e.ID)
	msg.Metadata.Set(messaging.EventTypeKey, e.Type)
	msg.Metadata.Set(messaging.SchemaVersionKey, strconv.Itoa(e.SchemaVersion))
	msg.Metadata.Set(messaging.StreamIDKey, e.StreamID)
	msg.Metadata.Set(messaging.StreamVersionKey, strconv.FormatInt(e.StreamVersion, 10))
	msg.Metadata.Set(messaging.CorrelationIDKey, e.CorrelationID)
	setReadPlace(msg, place)
	return wsql.Row{
		Offset: e.Position.GlobalPosition,
		UUID:   []byte(e.ID),
		Msg:    msg,
		// The offsets adapter stores this as last_processed_transaction_id.
		ExtraData: map[string]any{"transaction_id": strconv.FormatUint(e.Position.TransactionID, 10)},
	}, nil
}

// withExtraColumns scans the columns ScanEvent knows, then extra ones.
type withExtraColumns struct {
	row   wsql.Scanner
	extra []any
}

func (w withExtraColumns) Scan(dest ...any) error { return w.row.Scan(append(dest, w.extra...)...) }

// InsertQuery is not supported: events are appended with eventstore.Append,
// which checks the stream version, never through a Watermill publisher.
func (a EventsSchemaAdapter) InsertQuery(string, message.Messages) (wsql.Query, error) {
	return wsql.Query{}, errors.New("outbox: append events with eventstore.Append, not a Watermill publisher")
}

// SchemaInitializingQueries returns nothing: the schema comes from migrations.
func (a EventsSchemaAdapter) SchemaInitializingQueries(string) []wsql.Query { return nil }

// SubscribeIsolationLevel is repeatable read, so the whole batch comes from one snapshot.
func (a EventsSchemaAdapter) SubscribeIsolationLevel() sql.IsolationLevel {
	return sql.LevelRepeatableRead
}
