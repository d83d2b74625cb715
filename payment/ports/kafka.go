// Package ports feeds the payment application: from Kafka, a consumer
// router on order.events (and, through shared/poison/poisonkafka, on the
// poison queue); over HTTP, payments, liveness, metrics and the shared
// poison-queue admin endpoints.
package ports

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/contracts"
)

// HandleOrderEvents subscribes the application to order.events: an order
// placed is charged, a refund requested is refunded; other events are
// skipped as they are fetched.
func HandleOrderEvents(r *consumer.Router, application *app.Application) error {
	return r.HandleEvents("charge_order", contracts.OrderEventsTopic, consumer.Events{
		contracts.OrderPlacedType: func(ctx context.Context, msg *message.Message) error {
			placed, err := consumer.Decode[contracts.OrderPlaced](msg, contracts.OrderPlacedVersion)
			if err != nil {
				return err
			}
			return application.ChargeOrder(ctx, payment.Request{OrderID: placed.OrderID, Amount: placed.Total, Currency: placed.Currency})
		},
		contracts.OrderRefundRequestedType: func(ctx context.Context, msg *message.Message) error {
			refund, err := consumer.Decode[contracts.OrderRefundRequested](msg, contracts.OrderRefundRequestedVersion)
			if err != nil {
				return err
			}
			return application.RefundOrder(ctx, refund.OrderID)
		},
	})
}
