package outbox

import (
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/eventstore"
)

// The forwarder's SQL subscriber yields one Watermill message per read: a
// batch of up to BatchSize events in commit order. One message per event
// cost four goroutine hand-offs and an ack context per event (subscriber,
// the router's subscriber decorator, its handler loop, a goroutine per
// message), most of the forwarder's time per event; per batch they cost
// next to nothing. The routing middleware then decodes the batch into one
// message per event (the message Watermill would carry for it alone) and
// picks each one's destination.
//
// A batch message's payload holds its events' rows one after another, each
// of the batchColumns columns of forwardedColumns as a uvarint length and
// the column's text.

// batchColumns is the number of forwardedColumns.
const batchColumns = 10

// appendRow appends one row's columns to a batch message's payload.
func appendRow(payload []byte, cols *[batchColumns]sql.RawBytes) []byte {
	for _, c := range cols {
		payload = binary.AppendUvarint(payload, uint64(len(c)))
		payload = append(payload, c...)
	}
	return payload
}

// forwardedEvent is one event of a batch: its message, its position in the
// event store, and where the routing middleware sends it.
type forwardedEvent struct {
	msg         *message.Message
	position    eventstore.Position
	destination Destination
}

// metadataEntries sizes each event's metadata map once: the six entries
// batchEvents sets and the trace context stored with the event (traceparent,
// tracestate). Eight entries is also the most a Go map holds in its
// smallest form.
const metadataEntries = 6 + 2

var errBadBatch = errors.New("outbox: malformed batch message; was it read by EventsSchemaAdapter?")

// batchEvents decodes a batch message into its events, in commit order. Each
// event's message has the event id as UUID, the payload as stored, and as
// metadata the metadata stored with the event (its trace context) and its
// identity and correlation id.
func batchEvents(batch *message.Message) ([]forwardedEvent, error) {
	data := []byte(batch.Payload)
	// The text columns become substrings of one copy of the payload rather
	// than a string each.
	text := string(data)
	var events []forwardedEvent
	for at := 0; at < len(data); {
		var cols [batchColumns]struct{ from, to int }
		for i := range cols {
			n, size := binary.Uvarint(data[at:])
			if size <= 0 || uint64(len(data)-at-size) < n {
				return nil, errBadBatch
			}
			cols[i].from, cols[i].to = at+size, at+size+int(n)
			at = cols[i].to
		}
		col := func(i int) string { return text[cols[i].from:cols[i].to] }
		globalPosition, transactionID, streamID, streamVersion, id, eventType, schemaVersion, correlationID :=
			col(0), col(1), col(2), col(3), col(4), col(5), col(6), col(8)
		payload, metadata := data[cols[7].from:cols[7].to:cols[7].to], data[cols[9].from:cols[9].to]

		// Not message.NewMessage: that makes the ack channels of a message
		// the router acknowledges, and an event's message never is (the
		// batch's is); they were a fifth of the forwarder's time per event.
		e := forwardedEvent{msg: &message.Message{UUID: id, Payload: payload, Metadata: make(message.Metadata, metadataEntries)}}
		var errs [2]error
		e.position.GlobalPosition, errs[0] = strconv.ParseInt(globalPosition, 10, 64)
		e.position.TransactionID, errs[1] = strconv.ParseUint(transactionID, 10, 64)
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("outbox: position of event %s: %w", id, err)
		}
		if err := json.Unmarshal(metadata, &e.msg.Metadata); err != nil {
			return nil, fmt.Errorf("outbox: metadata of event %s: %w", id, err)
		}
		if _, ok := e.msg.Metadata[wkafka.UUIDHeaderKey]; ok {
			return nil, fmt.Errorf("outbox: metadata %s of event %s is reserved for the message UUID", wkafka.UUIDHeaderKey, id)
		}
		e.msg.Metadata.Set(contracts.EventIDKey, id)
		e.msg.Metadata.Set(contracts.EventTypeKey, eventType)
		e.msg.Metadata.Set(contracts.SchemaVersionKey, schemaVersion)
		e.msg.Metadata.Set(contracts.StreamIDKey, streamID)
		e.msg.Metadata.Set(contracts.StreamVersionKey, streamVersion)
		e.msg.Metadata.Set(contracts.CorrelationIDKey, correlationID)
		events = append(events, e)
	}
	return events, nil
}
