package payment

import (
	"context"
	"errors"
)

// ErrAlreadyRecorded means the order's payment was stored by someone else
// first (a concurrent redelivery): there is nothing left to do.
var ErrAlreadyRecorded = errors.New("payment already recorded")

// Repository stores payments as event streams, one per order.
type Repository interface {
	// Get returns the order's payment, or ErrNotFound.
	Get(ctx context.Context, orderID string) (*Payment, error)
	// Add stores a new payment, or returns ErrAlreadyRecorded.
	Add(ctx context.Context, p *Payment) error
}

// ErrTransient is a gateway failure worth retrying.
var ErrTransient = errors.New("transient gateway failure")

// Gateway charges money. Charges are idempotent by the request's order id,
// as with real payment providers' idempotency keys: asking twice charges once.
type Gateway interface {
	Charge(ctx context.Context, req Request) (Charge, error)
}
