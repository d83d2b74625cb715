// Package app holds the order service's use cases: commands that change
// orders and queries that read them, independent of HTTP and storage.
package app

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/es-outbox/reference/order/domain/order"
)

// Application is what the ports (HTTP) may do with orders.
type Application struct {
	orders order.Repository
	now    func() time.Time

	summaries OrderSummaries // the order list's read model (queries.go)
}

// New returns the application over a repository.
func New(orders order.Repository) *Application {
	return &Application{orders: orders, now: time.Now}
}

// PlaceOrder validates and stores a new order and returns its id. Storing the
// order is publishing it: its OrderPlaced event goes out through the outbox.
func (a *Application) PlaceOrder(ctx context.Context, cmd order.PlaceOrder) (string, error) {
	cmd.OrderID = uuid.Must(uuid.NewV7()).String()
	o, err := order.Place(cmd, a.now())
	if err != nil {
		return "", err
	}
	if err := a.orders.Add(ctx, o); err != nil {
		return "", err
	}
	return o.ID(), nil
}

// Order returns an order's current state, folded from its events.
func (a *Application) Order(ctx context.Context, id string) (*order.Order, error) {
	return a.orders.Get(ctx, id)
}
