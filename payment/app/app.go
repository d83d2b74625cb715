// Package app holds the payment service's use cases: charge an order once
// and refund it once. (What the consumer gave up on is the shared poison
// queue's: shared/poison/poisonapp.)
package app

import (
	"context"
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

// ChargeOrder charges an order once in effect, however often its
// OrderPlaced arrives. The order's payment stream says how far an earlier
// delivery got: a payment with an outcome is left alone; a new one is
// requested (and declined at once if the policy refuses it, without calling
// the gateway) and charged; one only requested (the process died after
// asking the gateway) is charged again. The gateway's idempotency key is the
// order id, so asking again answers with the first charge instead of making
// a second: that, not a request stored beforehand, is what makes a retried
// charge charge once, so the request and the outcome are stored together.
func (a *Application) ChargeOrder(ctx context.Context, req payment.Request) error {
	return tracing.Do(ctx, "ChargeOrder", trace.SpanKindInternal, func(ctx context.Context) error {
		return a.chargeOrder(ctx, req)
	}, attribute.String("order.id", req.OrderID), attribute.Int64("payment.amount", req.Amount))
}

func (a *Application) chargeOrder(ctx context.Context, req payment.Request) error {
	if err := req.Validate(); err != nil {
		return err
	}
	var redelivered, charged bool
	p, err := a.payments.Update(ctx, req.OrderID, func(p *payment.Payment) error {
		redelivered = p.Version() > 0
		if err := p.Request(req, a.policy, a.now()); err != nil {
			return err
		}
		if p.Status() != payment.StatusRequested {
			return nil // decided: by an earlier delivery, or refused by the policy
		}
		charge, err := a.gateway.Charge(ctx, req)
		if err != nil {
			return fmt.Errorf("charge order %s: %w", req.OrderID, err)
		}
		p.RecordCharge(charge, a.now())
		charged = true
		return nil
	})
	switch {
	case err != nil:
		return err // a concurrent delivery stored first: retried, it finds the payment decided
	case charged:
		a.logger.InfoContext(ctx, "payment recorded", "order_id", req.OrderID, "status", p.Status(), "amount", req.Amount, "currency", req.Currency)
	case redelivered:
		a.logger.InfoContext(ctx, "payment already decided; redelivery ignored", "order_id", req.OrderID, "status", p.Status())
	default:
		a.logger.InfoContext(ctx, "payment refused", "order_id", req.OrderID, "reason", p.DeclineReason())
	}
	return nil
}

// RefundOrder refunds an order's payment once in effect, the same way
// ChargeOrder charges it: the refund request and the refund are stored
// together once the gateway (idempotent by order id) has refunded.
func (a *Application) RefundOrder(ctx context.Context, orderID string) error {
	return tracing.Do(ctx, "RefundOrder", trace.SpanKindInternal, func(ctx context.Context) error {
		return a.refundOrder(ctx, orderID)
	}, attribute.String("order.id", orderID))
}

func (a *Application) refundOrder(ctx context.Context, orderID string) error {
	var refunded bool
	p, err := a.payments.Update(ctx, orderID, func(p *payment.Payment) error {
		if err := p.RequestRefund(a.now()); err != nil {
			return err // no payment, or one that took no money
		}
		if p.Status() != payment.StatusRefundRequested {
			return nil // refunded by an earlier delivery
		}
		refund, err := a.gateway.Refund(ctx, orderID, p.ChargeID(), p.Amount())
		if err != nil {
			return fmt.Errorf("refund order %s: %w", orderID, err)
		}
		p.RecordRefund(refund, a.now())
		refunded = true
		return nil
	})
	switch {
	case err != nil:
		return err
	case refunded:
		a.logger.InfoContext(ctx, "refund recorded", "order_id", orderID, "amount", p.Amount())
	default:
		a.logger.InfoContext(ctx, "payment already refunded; redelivery ignored", "order_id", orderID)
	}
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
