// Package app holds the order service's use cases: commands that change
// orders and queries that read them, independent of HTTP, Kafka and storage.
package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/tracing"
)

// ErrIdempotencyKeyReused means an Idempotency-Key came back with a
// different request than the one it was first used for.
var ErrIdempotencyKeyReused = errors.New("idempotency key reused with a different request")

// OrderStore is the repository the use cases need: the aggregate's, plus
// idempotent creation and the raw stream for debugging.
type OrderStore interface {
	order.Repository
	// AddIdempotent stores a new order unless key was used before: then it
	// stores nothing and returns the order id the key was first used for,
	// with the hash of that first request.
	AddIdempotent(ctx context.Context, o *order.Order, key, requestHash string) (firstOrderID, firstHash string, err error)
	// Events returns the order's stream as stored.
	Events(ctx context.Context, id string) ([]eventstore.RecordedEvent, error)
}

// Application is what the ports (HTTP, Kafka) may do with orders.
type Application struct {
	orders OrderStore
	now    func() time.Time

	summaries OrderSummaries // the order list's read model (queries.go)
	deadlines Deadlines      // finds overdue orders (deadlines.go)
}

// New returns the application over a store.
func New(orders OrderStore) *Application {
	return &Application{orders: orders, now: time.Now}
}

// PlaceOrder validates and stores a new order and returns its id. Storing the
// order is publishing it: its OrderPlaced event goes out through the outbox.
// With an idempotency key, the same key and command return the first order
// (replayed = true) without a second event.
func (a *Application) PlaceOrder(ctx context.Context, cmd order.PlaceOrder, idempotencyKey string) (id string, replayed bool, err error) {
	cmd.OrderID = uuid.Must(uuid.NewV7()).String()
	err = tracing.Do(ctx, "PlaceOrder", trace.SpanKindInternal, func(ctx context.Context) error {
		id, replayed, err = a.placeOrder(ctx, cmd, idempotencyKey)
		return err
	}, attribute.String("order.id", cmd.OrderID))
	return id, replayed, err
}

func (a *Application) placeOrder(ctx context.Context, cmd order.PlaceOrder, idempotencyKey string) (id string, replayed bool, err error) {
	o, err := order.Place(cmd, a.now())
	if err != nil {
		return "", false, err
	}
	if idempotencyKey == "" {
		return o.ID(), false, a.orders.Add(ctx, o)
	}
	hash := requestHash(cmd)
	firstID, firstHash, err := a.orders.AddIdempotent(ctx, o, idempotencyKey, hash)
	switch {
	case err != nil:
		return "", false, err
	case firstID == "":
		return o.ID(), false, nil
	case firstHash != hash:
		return "", false, fmt.Errorf("%w: key %q", ErrIdempotencyKeyReused, idempotencyKey)
	}
	return firstID, true, nil
}

// requestHash identifies a command's content, whatever order id it got.
func requestHash(cmd order.PlaceOrder) string {
	cmd.OrderID = ""
	b, _ := json.Marshal(cmd)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// CancelOrder cancels an order; expectedVersion (from If-Match) may be
// order.AnyVersion.
func (a *Application) CancelOrder(ctx context.Context, id string, expectedVersion int64, reason string) (*order.Order, error) {
	return a.update(ctx, "CancelOrder", id, expectedVersion, func(o *order.Order) error { return o.Cancel(reason, a.now()) })
}

// RecordPaymentSucceeded applies the payment service's charge to the order.
func (a *Application) RecordPaymentSucceeded(ctx context.Context, id, chargeID string, amount int64) error {
	_, err := a.update(ctx, "RecordPaymentSucceeded", id, order.AnyVersion, func(o *order.Order) error {
		return o.RecordPaymentSucceeded(chargeID, amount, a.now())
	})
	return err
}

// RecordPaymentDeclined applies a declined payment to the order.
func (a *Application) RecordPaymentDeclined(ctx context.Context, id, reason string) error {
	_, err := a.update(ctx, "RecordPaymentDeclined", id, order.AnyVersion, func(o *order.Order) error {
		return o.RecordPaymentDeclined(reason, a.now())
	})
	return err
}

// RecordRefund applies the payment service's refund to the order.
func (a *Application) RecordRefund(ctx context.Context, id, refundID string, amount int64) error {
	_, err := a.update(ctx, "RecordRefund", id, order.AnyVersion, func(o *order.Order) error {
		return o.RecordRefund(refundID, amount, a.now())
	})
	return err
}

// update runs a command on the order. Without an expected version, a
// concurrent write just means deciding again on the newer state; with one,
// it means the client's version is stale.
func (a *Application) update(ctx context.Context, name, id string, expectedVersion int64, command func(*order.Order) error) (o *order.Order, err error) {
	err = tracing.Do(ctx, name, trace.SpanKindInternal, func(ctx context.Context) error {
		o, err = a.retryUpdate(ctx, id, expectedVersion, command)
		return err
	}, attribute.String("order.id", id))
	return o, err
}

func (a *Application) retryUpdate(ctx context.Context, id string, expectedVersion int64, command func(*order.Order) error) (*order.Order, error) {
	for attempt := 1; ; attempt++ {
		o, err := a.orders.Update(ctx, id, expectedVersion, command)
		if !errors.Is(err, order.ErrConcurrentUpdate) {
			return o, err
		}
		if expectedVersion != order.AnyVersion {
			return nil, fmt.Errorf("%w: %v", order.ErrVersionMismatch, err)
		}
		if attempt == 5 {
			return nil, err
		}
	}
}

// Order returns an order's current state, folded from its events.
func (a *Application) Order(ctx context.Context, id string) (*order.Order, error) {
	return a.orders.Get(ctx, id)
}

// OrderEvents returns an order's stream, for debugging.
func (a *Application) OrderEvents(ctx context.Context, id string) ([]eventstore.RecordedEvent, error) {
	return a.orders.Events(ctx, id)
}
