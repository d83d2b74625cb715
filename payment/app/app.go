// Package app holds the payment service's use cases: charge an order once
// and refund it once. (What the consumer gave up on is the shared poison
// queue's: shared/poison/poisonapp.)
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/shared/tracing"
)

// Application charges and refunds orders.
type Application struct {
	payments payment.Repository
	gateway  payment.Gateway
	policy   payment.Policy
	logger   *slog.Logger
	now      func() time.Time
}

// New returns the application; it refuses what policy does not charge.
func New(payments payment.Repository, gateway payment.Gateway, policy payment.Policy, logger *slog.Logger) *Application {
	return &Application{payments: payments, gateway: gateway, policy: policy, logger: logger, now: time.Now}
}

// ChargeOrder charges an order exactly once in effect; a request the policy
// refuses is declined without calling the gateway. The payment stream
// says how far an earlier delivery got: a payment with an outcome is left
// alone; a requested one (the process died after asking the gateway) asks
// again with the same idempotency key, and the gateway answers with the first
// charge instead of making a second.
func (a *Application) ChargeOrder(ctx context.Context, req payment.Request) error {
	return tracing.Do(ctx, "ChargeOrder", trace.SpanKindInternal, func(ctx context.Context) error {
		return a.chargeOrder(ctx, req)
	}, attribute.String("order.id", req.OrderID), attribute.Int64("payment.amount", req.Amount))
}

func (a *Application) chargeOrder(ctx context.Context, req payment.Request) error {
	if err := req.Validate(); err != nil {
		return err
	}
	p, err := a.payments.Get(ctx, req.OrderID)
	if errors.Is(err, payment.ErrNotFound) {
		if p, err = payment.Requested(req, a.policy, a.now()); err != nil {
			return err
		}
		if err := a.payments.Save(ctx, p); err != nil {
			return err // a concurrent delivery started it: retried, it finds the stream
		}
		if p.Status() == payment.StatusDeclined {
			a.logger.InfoContext(ctx, "payment refused", "order_id", req.OrderID, "reason", p.DeclineReason())
			return nil
		}
		p, err = a.payments.Get(ctx, req.OrderID)
	}
	if err != nil {
		return err
	}
	if p.Status() != payment.StatusRequested {
		a.logger.InfoContext(ctx, "payment already decided; redelivery ignored", "order_id", req.OrderID, "status", p.Status())
		return nil
	}
	charge, err := a.gateway.Charge(ctx, req)
	if err != nil {
		return fmt.Errorf("charge order %s: %w", req.OrderID, err)
	}
	p.RecordCharge(charge, a.now())
	if err := a.payments.Save(ctx, p); err != nil {
		return err
	}
	a.logger.InfoContext(ctx, "payment recorded", "order_id", req.OrderID, "status", p.Status(), "amount", req.Amount, "currency", req.Currency)
	return nil
}

// RefundOrder refunds an order's payment exactly once in effect, the same
// way ChargeOrder charges it.
func (a *Application) RefundOrder(ctx context.Context, orderID string) error {
	return tracing.Do(ctx, "RefundOrder", trace.SpanKindInternal, func(ctx context.Context) error {
		return a.refundOrder(ctx, orderID)
	}, attribute.String("order.id", orderID))
}

func (a *Application) refundOrder(ctx context.Context, orderID string) error {
	p, err := a.payments.Get(ctx, orderID)
	if err != nil {
		return err
	}
	if p.Status() == payment.StatusSucceeded {
		if err := p.RequestRefund(a.now()); err != nil {
			return err
		}
		if err := a.payments.Save(ctx, p); err != nil {
			return err
		}
		if p, err = a.payments.Get(ctx, orderID); err != nil {
			return err
		}
	}
	switch p.Status() {
	case payment.StatusRefunded:
		a.logger.InfoContext(ctx, "payment already refunded; redelivery ignored", "order_id", orderID)
		return nil
	case payment.StatusRefundRequested:
	default:
		return p.RequestRefund(a.now()) // says why it cannot be refunded
	}
	refund, err := a.gateway.Refund(ctx, orderID, p.ChargeID(), p.Amount())
	if err != nil {
		return fmt.Errorf("refund order %s: %w", orderID, err)
	}
	p.RecordRefund(refund, a.now())
	if err := a.payments.Save(ctx, p); err != nil {
		return err
	}
	a.logger.InfoContext(ctx, "refund recorded", "order_id", orderID, "amount", p.Amount())
	return nil
}

// Outcomes counts the payments that reached each outcome.
func (a *Application) Outcomes(ctx context.Context) (map[payment.Status]int64, error) {
	return a.payments.CountOutcomes(ctx)
}

// Payment returns the order's payment, or payment.ErrNotFound.
func (a *Application) Payment(ctx context.Context, orderID string) (*payment.Payment, error) {
	return a.payments.Get(ctx, orderID)
}
