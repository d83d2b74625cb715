package ports

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/contracts"
)

// HandlePaymentEvents subscribes the application to payment.events: each
// payment outcome becomes a command on its order. A redelivered outcome
// finds the order already changed and changes nothing.
func HandlePaymentEvents(r *consumer.Router, application *app.Application) error {
	return r.HandleEvents("apply_payment_outcome", contracts.PaymentEventsTopic, consumer.Events{
		contracts.PaymentSucceededType: func(ctx context.Context, msg *message.Message) error {
			e, err := consumer.Decode[contracts.PaymentSucceeded](msg, contracts.PaymentSucceededVersion)
			if err != nil {
				return err
			}
			return application.RecordPaymentSucceeded(ctx, e.OrderID, e.ChargeID, e.Amount)
		},
		contracts.PaymentDeclinedType: func(ctx context.Context, msg *message.Message) error {
			e, err := consumer.Decode[contracts.PaymentDeclined](msg, contracts.PaymentDeclinedVersion)
			if err != nil {
				return err
			}
			return application.RecordPaymentDeclined(ctx, e.OrderID, e.Reason)
		},
		contracts.PaymentRefundedType: func(ctx context.Context, msg *message.Message) error {
			e, err := consumer.Decode[contracts.PaymentRefunded](msg, contracts.PaymentRefundedVersion)
			if err != nil {
				return err
			}
			return application.RecordRefund(ctx, e.OrderID, e.RefundID, e.Amount)
		},
	})
}
