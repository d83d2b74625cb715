package order

import (
	"context"
	"errors"
)

// ErrVersionMismatch means the client based its command on a version of the
// order that is no longer current (a stale If-Match).
var ErrVersionMismatch = errors.New("order version mismatch")

// ErrConcurrentUpdate means someone else changed the order between loading
// and storing it; the command may be tried again on the new state.
var ErrConcurrentUpdate = errors.New("order changed concurrently")

// AnyVersion lets Update apply to whatever version the order has.
const AnyVersion int64 = -1

// Repository stores orders as their event streams.
type Repository interface {
	// Add stores a new order's events and marks them committed; it fails
	// if the order exists.
	Add(ctx context.Context, o *Order) error
	// Get loads an order, or returns ErrNotFound.
	Get(ctx context.Context, id string) (*Order, error)
	// Update loads the order, lets update change it, stores the changes and
	// returns the order with them marked committed. With expectedVersion other than AnyVersion, an order at another version
	// gives ErrVersionMismatch; a concurrent write gives ErrConcurrentUpdate.
	Update(ctx context.Context, id string, expectedVersion int64, update func(*Order) error) (*Order, error)
}
