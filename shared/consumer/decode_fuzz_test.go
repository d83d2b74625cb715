package consumer_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/contracts"
)

// FuzzDecode feeds Kafka messages with arbitrary headers and payloads to
// EventType and Decode, as both services' handlers do before anything else:
// they must return an error (so the message is poisoned with a reason),
// never panic.
func FuzzDecode(f *testing.F) {
	f.Add(contracts.OrderPlacedType, "2", []byte(`{"order_id":"o-1","total":300,"currency":"EUR","placed_at":"2026-01-02T03:04:05Z"}`))
	f.Add(contracts.OrderPlacedType, "1", []byte(`{"order_id":"o-1","items":[{"quantity":2,"unit_price":150}]}`))
	f.Add(contracts.PaymentSucceededType, "1", []byte(`{"oops`))
	f.Add("", "", []byte(nil))
	f.Fuzz(func(t *testing.T, eventType, schemaVersion string, payload []byte) {
		msg := message.NewMessage("id", payload)
		msg.Metadata.Set(contracts.EventTypeKey, eventType)
		msg.Metadata.Set(contracts.SchemaVersionKey, schemaVersion)
		if _, err := consumer.EventType(msg); err != nil && eventType != "" {
			t.Fatalf("EventType(%q) = %v", eventType, err)
		}
		_, _ = consumer.Decode[contracts.OrderPlaced](msg, contracts.OrderPlacedVersion)
		_, _ = consumer.Decode[contracts.OrderRefundRequested](msg, contracts.OrderRefundRequestedVersion)
		_, _ = consumer.Decode[contracts.PaymentSucceeded](msg, contracts.PaymentSucceededVersion)
		_, _ = consumer.Decode[contracts.PaymentDeclined](msg, contracts.PaymentDeclinedVersion)
		_, _ = consumer.Decode[contracts.PaymentRefunded](msg, contracts.PaymentRefundedVersion)
	})
}
