// Package app holds the payment service's use cases: charge an order once,
// and let people inspect, requeue or discard what the consumer gave up on.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/es-outbox/reference/payment/domain/payment"
)

// Application charges orders.
type Application struct {
	payments payment.Repository
	gateway  payment.Gateway
	logger   *slog.Logger
	now      func() time.Time
}

// New returns the application.
func New(payments payment.Repository, gateway payment.Gateway, logger *slog.Logger) *Application {
	return &Application{payments: payments, gateway: gateway, logger: logger, now: time.Now}
}

// ChargeOrder charges an order exactly once in effect. A payment already
// stored for the order means this is a redelivery: nothing is charged again.
// If the process dies between the charge and storing its outcome, the retry
// charges again with the same idempotency key, which the gateway answers with
// the first charge instead of a new one.
func (a *Application) ChargeOrder(ctx context.Context, req payment.Request) error {
	if err := req.Validate(); err != nil {
		return err
	}
	if _, err := a.payments.Get(ctx, req.OrderID); err == nil {
		a.logger.InfoContext(ctx, "payment already recorded; redelivery ignored", "order_id", req.OrderID)
		return nil
	} else if !errors.Is(err, payment.ErrNotFound) {
		return err
	}
	charge, err := a.gateway.Charge(ctx, req)
	if err != nil {
		return fmt.Errorf("charge order %s: %w", req.OrderID, err)
	}
	p, err := payment.Record(req, charge, a.now())
	if err != nil {
		return err
	}
	err = a.payments.Add(ctx, p)
	if errors.Is(err, payment.ErrAlreadyRecorded) {
		return nil
	}
	if err != nil {
		return err
	}
	a.logger.InfoContext(ctx, "payment recorded", "order_id", req.OrderID, "status", p.Status(), "amount", req.Amount, "currency", req.Currency)
	return nil
}

// Payment returns the order's payment, or payment.ErrNotFound.
func (a *Application) Payment(ctx context.Context, orderID string) (*payment.Payment, error) {
	return a.payments.Get(ctx, orderID)
}
