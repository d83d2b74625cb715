// Package ports feeds the payment application: from Kafka, a consumer
// router on order.events and on the poison queue; over HTTP, liveness,
// metrics and the poison-queue admin endpoints.
package ports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/messaging"
)

// Topics and consumer group of the payment service's consumer.
const (
	OrderEventsTopic = "order.events"
	PoisonTopic      = "payment.poison"
	ConsumerGroup    = "payment"
)

// HandleOrderEvents subscribes the application to order.events.
func HandleOrderEvents(r *consumer.Router, application *app.Application) {
	r.Handle("charge_order", OrderEventsTopic, func(ctx context.Context, msg *message.Message) error {
		req, ok, err := decodeOrderPlaced(msg)
		if err != nil || !ok {
			return err
		}
		return application.ChargeOrder(ctx, req)
	})
}

// decodeOrderPlaced returns the payment request in an OrderPlaced event, or
// ok=false for events the payment service does not handle.
func decodeOrderPlaced(msg *message.Message) (req payment.Request, ok bool, err error) {
	eventType := msg.Metadata.Get(messaging.EventTypeKey)
	if eventType == "" {
		return req, false, errors.New("message has no event_type header")
	}
	if eventType != contracts.OrderPlacedType {
		return req, false, nil
	}
	version := msg.Metadata.Get(messaging.SchemaVersionKey)
	if version != strconv.Itoa(contracts.OrderPlacedVersion) {
		return req, false, fmt.Errorf("%s schema version %q is not supported (want %d)", eventType, version, contracts.OrderPlacedVersion)
	}
	var placed contracts.OrderPlaced
	if err := json.Unmarshal(msg.Payload, &placed); err != nil {
		return req, false, fmt.Errorf("%s payload is not valid: %w", eventType, err)
	}
	req = payment.Request{OrderID: placed.OrderID, Amount: placed.Total, Currency: placed.Currency}
	return req, true, req.Validate()
}
