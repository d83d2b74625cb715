package outbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/eventstore"
)

// The forwarder's SQL subscriber yields one Watermill message per read: a
// batch of up to BatchSize events in commit order. One message per event
// cost four goroutine hand-offs and an ack context per event (subscriber,
// the router's subscriber decorator, its handler loop, a goroutine per
// message), most of the forwarder's time per event; per batch they cost
// next to nothing. The routing middleware then decodes the batch into the
// Kafka record of each event and picks each one's destination.
//
// A batch message's payload holds its events' rows one after another, each
// of the batchColumns columns of forwardedColumns as a uvarint length and
// the column's text.

// batchColumns is the number of forwardedColumns.
const batchColumns = 10

// appendRow appends one row's columns to a batch message's payload.
func appendRow[C ~[]byte](payload []byte, cols []C) []byte {
	for _, c := range cols {
		payload = binary.AppendUvarint(payload, uint64(len(c)))
		payload = append(payload, c...)
	}
	return payload
}

// forwardedEvent is one event of a batch: its Kafka record, its position in
// the event store, and what the routing and the producer span need.
type forwardedEvent struct {
	// record has the event's key (its stream id), value (its payload) and
	// headers; the routing middleware sets its topic.
	record                  *kgo.Record
	position                eventstore.Position
	id, eventType, streamID string
	destination             Destination
}

var errBadBatch = errors.New("outbox: malformed batch message; was it read by EventsSchemaAdapter?")

// eventHeaders is how many headers every record has besides the metadata
// stored with its event: the message UUID and the six below.
const eventHeaders = 1 + 6

// batchEvents decodes a batch message into its events' records, in commit
// order, in watermill-kafka's format (what kafka.NewRecord makes of the
// event's Watermill message, and what the consumers read with its
// DefaultMarshaler): the event id as the message UUID
// (wkafka.UUIDHeaderKey), the payload as stored as value, the stream id as
// key, and as headers the metadata stored with the event (its trace
// context) and its identity and correlation id. No Watermill message or
// metadata map is made per event: the record is all the forwarder sends,
// and its key, value and headers are slices of the batch's payload.
func batchEvents(batch *message.Message) ([]forwardedEvent, error) {
	data := []byte(batch.Payload)
	// The text columns the forwarder reads as strings (the id, type and
	// stream for the routing and the span, the positions) become
	// substrings of one copy of the payload rather than a string each.
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
		raw := func(i int) []byte { return data[cols[i].from:cols[i].to:cols[i].to] }
		e := forwardedEvent{id: col(4), eventType: col(5), streamID: col(2)}
		var errs [2]error
		e.position.GlobalPosition, errs[0] = strconv.ParseInt(col(0), 10, 64)
		e.position.TransactionID, errs[1] = strconv.ParseUint(col(1), 10, 64)
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("outbox: position of event %s: %w", e.id, err)
		}
		var stored map[string]string
		if metadata := col(9); metadata != "{}" {
			if err := json.Unmarshal(raw(9), &stored); err != nil {
				return nil, fmt.Errorf("outbox: metadata of event %s: %w", e.id, err)
			}
			if _, ok := stored[wkafka.UUIDHeaderKey]; ok {
				return nil, fmt.Errorf("outbox: metadata %s of event %s is reserved for the message UUID", wkafka.UUIDHeaderKey, e.id)
			}
		}
		// Room for a trace context the producer span adds (see
		// tracing.StartSend) when none was stored.
		headers := make([]kgo.RecordHeader, 0, eventHeaders+len(stored)+1)
		headers = append(headers,
			kgo.RecordHeader{Key: wkafka.UUIDHeaderKey, Value: raw(4)},
			kgo.RecordHeader{Key: contracts.EventIDKey, Value: raw(4)},
			kgo.RecordHeader{Key: contracts.EventTypeKey, Value: raw(5)},
			kgo.RecordHeader{Key: contracts.SchemaVersionKey, Value: raw(6)},
			kgo.RecordHeader{Key: contracts.StreamIDKey, Value: raw(2)},
			kgo.RecordHeader{Key: contracts.StreamVersionKey, Value: raw(3)},
			kgo.RecordHeader{Key: contracts.CorrelationIDKey, Value: raw(8)},
		)
		for k, v := range stored {
			if !identityHeader(k) { // the event's own identity wins, as it always did
				headers = append(headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
			}
		}
		e.record = &kgo.Record{Key: raw(2), Value: raw(7), Headers: headers}
		events = append(events, e)
	}
	return events, nil
}

// identityHeader says whether key is one of the headers batchEvents sets
// from the event's columns.
func identityHeader(key string) bool {
	switch key {
	case contracts.EventIDKey, contracts.EventTypeKey, contracts.SchemaVersionKey, contracts.StreamIDKey,
		contracts.StreamVersionKey, contracts.CorrelationIDKey:
		return true
	}
	return false
}
