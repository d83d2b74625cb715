// Package outbox forwards the events in the event store to Kafka. The events
// table is the outbox: a Watermill SQL subscriber reads it through
// EventsSchemaAdapter, and a Watermill router publishes every event to the
// Kafka topic its route picks, keyed by its stream id.
package outbox

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

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
		SELECT ` + forwardedColumns + `, place, count(*) OVER () AS batch_size FROM batch
		ORDER BY place`,
		Args: next.Args,
	}
}

// forwardedColumns are the columns UnmarshalMessage scans: what goes to
// Kafka and the event's position. Fewer than eventstore.SelectColumns (no
// recorded_at) because every row of a batch is scanned through database/sql
// before its first event is sent. The transaction id is text under another
// name for the reason SelectColumns gives.
const forwardedColumns = `global_position, transaction_id::text AS transaction_id_text, stream_id, stream_version,
	event_id::text, event_type, schema_version, payload, correlation_id, metadata`

// metadataEntries sizes each message's metadata map once: the seven entries
// UnmarshalMessage sets and a traceparent stored with the event. Eight
// entries is also the most a Go map holds in its smallest form.
const metadataEntries = 7 + 1

// scannedEvent is where UnmarshalMessage scans a row: one allocation, where
// separate variables passed to Scan would escape one by one.
type scannedEvent struct {
	place                                 readPlace
	txID, id, eventType, streamID, corrID string
	streamVersion                         int64
	schemaVersion                         int
	payload                               []byte
	metadata                              sql.RawBytes
}

// UnmarshalMessage turns a row into a message whose UUID is the event id and
// whose metadata carries the event's identity, correlation id and trace
// context, and, for the forwarder only, its read place.
func (a EventsSchemaAdapter) UnmarshalMessage(row wsql.Scanner) (wsql.Row, error) {
	e := new(scannedEvent)
	err := row.Scan(&e.place.Position.GlobalPosition, &e.txID, &e.streamID, &e.streamVersion, &e.id, &e.eventType,
		&e.schemaVersion, &e.payload, &e.corrID, &e.metadata, &e.place.Place, &e.place.Size)
	if err != nil {
		return wsql.Row{}, fmt.Errorf("outbox: scan event: %w", err)
	}
	if e.place.Position.TransactionID, err = strconv.ParseUint(e.txID, 10, 64); err != nil {
		return wsql.Row{}, fmt.Errorf("outbox: transaction id %q of event %s: %w", e.txID, e.id, err)
	}
	msg := message.NewMessage(e.id, message.Payload(e.payload))
	// Metadata is scanned as raw bytes (valid until the next row) and
	// decoded once, straight into the message's map.
	msg.Metadata = make(message.Metadata, metadataEntries)
	if err := json.Unmarshal(e.metadata, &msg.Metadata); err != nil {
		return wsql.Row{}, fmt.Errorf("outbox: metadata of event %s: %w", e.id, err)
	}
	msg.Metadata.Set(messaging.EventIDKey, e.id)
	msg.Metadata.Set(messaging.EventTypeKey, e.eventType)
	msg.Metadata.Set(messaging.SchemaVersionKey, strconv.Itoa(e.schemaVersion))
	msg.Metadata.Set(messaging.StreamIDKey, e.streamID)
	msg.Metadata.Set(messaging.StreamVersionKey, strconv.FormatInt(e.streamVersion, 10))
	msg.Metadata.Set(messaging.CorrelationIDKey, e.corrID)
	setReadPlace(msg, e.place)
	return wsql.Row{
		Offset: e.place.Position.GlobalPosition,
		UUID:   []byte(e.id),
		Msg:    msg,
		// The stock offsets adapter stores this as last_processed_transaction_id.
		ExtraData: map[string]any{"transaction_id": e.txID},
	}, nil
}

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
