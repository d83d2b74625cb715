package outbox

import (
	"database/sql"
	"maps"
	"testing"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/eventstore"
)

func batchOf(rows ...[batchColumns]string) *message.Message {
	var payload []byte
	for _, row := range rows {
		var cols [batchColumns]sql.RawBytes
		for i, c := range row {
			cols[i] = sql.RawBytes(c)
		}
		payload = appendRow(payload, cols[:])
	}
	return message.NewMessage("batch", payload)
}

func TestBatchEventsDecodesEveryRowInOrder(t *testing.T) {
	batch := batchOf(
		[batchColumns]string{"7", "900", "order-1", "3", "id-1", "order.Placed", "2", `{"n": 1}`, "corr-1", `{"traceparent": "tp"}`},
		[batchColumns]string{"8", "901", "order-2", "1", "id-2", "order.Paid", "1", `{}`, "", `{}`},
	)
	events, err := batchEvents(batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("decoded %d events, want 2", len(events))
	}
	first := events[0]
	if first.id != "id-1" || string(first.record.Key) != "order-1" || string(first.record.Value) != `{"n": 1}` ||
		first.position != (eventstore.Position{TransactionID: 900, GlobalPosition: 7}) {
		t.Errorf("first event: id %s, key %s, value %s, position %v", first.id, first.record.Key, first.record.Value, first.position)
	}
	want := map[string]string{wkafka.UUIDHeaderKey: "id-1", "event_id": "id-1", "event_type": "order.Placed", "schema_version": "2",
		"stream_id": "order-1", "stream_version": "3", "correlation_id": "corr-1", "traceparent": "tp"}
	if got := headers(first.record); !maps.Equal(got, want) {
		t.Errorf("first event: headers %v, want %v", got, want)
	}
	if events[1].id != "id-2" || events[1].position.GlobalPosition != 8 || len(events[1].record.Headers) != 7 {
		t.Errorf("second event: id %s, position %v, headers %v", events[1].id, events[1].position, headers(events[1].record))
	}
}

// A stored metadata entry under one of the event's own header names does
// not hide or double the event's value.
func TestBatchEventsKeepsTheEventsIdentityOverStoredMetadata(t *testing.T) {
	events, err := batchEvents(batchOf(
		[batchColumns]string{"7", "900", "order-1", "3", "id-1", "order.Placed", "2", `{}`, "corr-1", `{"stream_id": "other", "x": "y"}`}))
	if err != nil {
		t.Fatal(err)
	}
	r := events[0].record
	if got := headers(r); got["stream_id"] != "order-1" || got["x"] != "y" || len(r.Headers) != len(got) {
		t.Errorf("headers %v (%d), want stream_id order-1, x y, each once", got, len(r.Headers))
	}
}

func headers(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestBatchEventsRefusesWhatItCannotForward(t *testing.T) {
	valid := [batchColumns]string{"7", "900", "order-1", "3", "id-1", "order.Placed", "2", `{}`, "", `{}`}
	reserved := valid
	reserved[9] = `{"` + wkafka.UUIDHeaderKey + `": "x"}`
	badPosition := valid
	badPosition[0] = "seven"
	truncated := batchOf(valid)
	truncated.Payload = truncated.Payload[:len(truncated.Payload)-1]
	for name, batch := range map[string]*message.Message{
		"metadata with the UUID header": batchOf(reserved),
		"invalid metadata":              batchOf([batchColumns]string{"7", "900", "order-1", "3", "id-1", "order.Placed", "2", `{}`, "", `[`}),
		"invalid position":              batchOf(badPosition),
		"truncated payload":             truncated,
	} {
		if events, err := batchEvents(batch); err == nil {
			t.Errorf("%s: decoded %d events, want an error", name, len(events))
		}
	}
}
