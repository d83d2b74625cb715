package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/es-outbox/reference/order/domain/order"
)

// Page sizes of the order list.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// OrderSummary is an order as the order list shows it. It comes from a read
// model that follows the event store closely, not instantly.
type OrderSummary struct {
	OrderID    string
	CustomerID string
	Status     order.Status
	Currency   string
	Total      int64
	// ItemCount is the number of units ordered, over all line items.
	ItemCount int64
	PlacedAt  time.Time
	// UpdatedAt is when the order's latest event was recorded.
	UpdatedAt time.Time
	Version   int64
}

// OrderFilter selects orders; an empty field selects all.
type OrderFilter struct {
	CustomerID string
	Status     order.Status
}

// OrderCursor is where a page of the order list ends. The list is ordered
// newest first: by placement time, then by order id, both descending.
type OrderCursor struct {
	PlacedAt time.Time
	OrderID  string
}

// ListOrders asks for one page of the order list.
type ListOrders struct {
	OrderFilter
	// Limit is the page size, from 1 to MaxPageSize (DefaultPageSize when
	// the client asks for none).
	Limit int
	// After continues the list after a previous page; nil for the first.
	After *OrderCursor
}

// OrderPage is one page of the order list.
type OrderPage struct {
	Orders []OrderSummary
	// Next continues the list after this page; nil on the last page.
	Next *OrderCursor
}

// OrderSummaries is the read model the order list comes from.
type OrderSummaries interface {
	// ListOrders returns up to limit orders that match filter, in the list's
	// order, after the cursor if there is one.
	ListOrders(ctx context.Context, filter OrderFilter, after *OrderCursor, limit int) ([]OrderSummary, error)
}

// WithOrderSummaries returns the application serving the order list from
// summaries.
func (a *Application) WithOrderSummaries(summaries OrderSummaries) *Application {
	with := *a
	with.summaries = summaries
	return &with
}

// ListOrders returns one page of the orders that match q's filter.
func (a *Application) ListOrders(ctx context.Context, q ListOrders) (OrderPage, error) {
	if q.Limit < 1 || q.Limit > MaxPageSize {
		return OrderPage{}, &order.ValidationError{Field: "limit", Message: fmt.Sprintf("must be from 1 to %d", MaxPageSize)}
	}
	if q.Status != "" && !slices.Contains(order.Statuses, q.Status) {
		valid := make([]string, len(order.Statuses))
		for i, s := range order.Statuses {
			valid[i] = string(s)
		}
		return OrderPage{}, &order.ValidationError{Field: "status", Message: "must be one of " + strings.Join(valid, ", ")}
	}
	if a.summaries == nil {
		return OrderPage{}, errors.New("app: the order list has no read model (see WithOrderSummaries)")
	}
	// One more than the page tells whether there is a next page.
	orders, err := a.summaries.ListOrders(ctx, q.OrderFilter, q.After, q.Limit+1)
	if err != nil {
		return OrderPage{}, fmt.Errorf("list orders: %w", err)
	}
	page := OrderPage{Orders: orders}
	if len(orders) > q.Limit {
		page.Orders = orders[:q.Limit]
		last := page.Orders[q.Limit-1]
		page.Next = &OrderCursor{PlacedAt: last.PlacedAt, OrderID: last.OrderID}
	}
	return page, nil
}
