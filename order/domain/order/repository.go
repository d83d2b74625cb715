package order

import "context"

// Repository stores orders as their event streams.
type Repository interface {
	// Add stores a new order's events; it fails if the order exists.
	Add(ctx context.Context, o *Order) error
	// Get loads an order, or returns ErrNotFound.
	Get(ctx context.Context, id string) (*Order, error)
}
