package outbox

import (
	"database/sql"
	"testing"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/es-outbox/reference/shared/eventstore"
)

func batchOf(rows ...[batchColumns]string) *message.Message {
	var payload []byte
	for _, row := range rows {
		var cols [batchColumns]sql.RawBytes
		for i, c := range row {
			cols[i] = sql.RawBytes(c)
		}
		payload = appendRow(payload, &cols)
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
	if first.msg.UUID != "id-1" || string(first.msg.Payload) != `{"n": 1}` || first.position != (eventstore.Position{TransactionID: 900, GlobalPosition: 7}) {
		t.Errorf("first event: uuid %s, payload %s, position %v", first.msg.UUID, first.msg.Payload, first.position)
	}
	want := message.Metadata{"event_id": "id-1", "event_type": "order.Placed", "schema_version": "2", "stream_id": "order-1",
		"stream_version": "3", "correlation_id": "corr-1", "traceparent": "tp"}
	for k, v := range want {
		if got := first.msg.Metadata.Get(k); got != v {
			t.Errorf("first event: metadata %s = %q, want %q", k, got, v)
		}
	}
	if len(first.msg.Metadata) != len(want) {
		t.Errorf("first event: metadata %v, want %v", first.msg.Metadata, want)
	}
	if events[1].msg.UUID != "id-2" || events[1].position.GlobalPosition != 8 {
		t.Errorf("second event: uuid %s, position %v", events[1].msg.UUID, events[1].position)
	}
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
