package payment

import (
	"context"
	"errors"
)

// ErrConcurrentUpdate means another process appended to the payment's stream
// first (a concurrent redelivery): reload and decide again.
var ErrConcurrentUpdate = errors.New("payment changed concurrently")

// Repository stores payments as event streams, one per order.
type Repository interface {
	// Get returns the order's payment, or ErrNotFound.
	Get(ctx context.Context, orderID string) (*Payment, error)
	// Update loads the order's payment (New(orderID) if it has none yet),
	// lets update change it, and appends the changes only if the stream is
	// still at the version it was loaded at (ErrConcurrentUpdate
	// otherwise). It returns the payment with them marked committed; if
	// update fails, nothing is stored.
	Update(ctx context.Context, orderID string, update func(*Payment) error) (*Payment, error)
	// CountOutcomes counts the payments that reached each outcome
	// (succeeded, declined, refunded), whatever happened after.
	CountOutcomes(ctx context.Context) (map[Status]int64, error)
}

// ErrTransient is a gateway failure worth retrying.
var ErrTransient = errors.New("transient gateway failure")

// Gateway moves money. Its calls are idempotent by order id, as with real
// payment providers' idempotency keys: asking twice charges (or refunds) once.
type Gateway interface {
	Charge(ctx context.Context, req Request) (Charge, error)
	Refund(ctx context.Context, orderID, chargeID string, amount int64) (Refund, error)
}
