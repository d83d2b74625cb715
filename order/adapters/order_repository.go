// Package adapters implements the order service's ports to the outside world:
// the order repository on the shared PostgreSQL event store.
package adapters

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/eventstore"
)

// ErrOrderExists means an order with the same id is already stored.
var ErrOrderExists = errors.New("order already exists")

// OrderRepository stores each order as the event stream "order-<id>".
type OrderRepository struct {
	pool    *pgxpool.Pool
	appends *eventstore.GroupCommit
}

// NewOrderRepository returns a repository on the event store in pool. With
// appends, the orders added at the same time are stored with one statement
// (see Add); nil stores each alone.
func NewOrderRepository(pool *pgxpool.Pool, appends *eventstore.GroupCommit) *OrderRepository {
	return &OrderRepository{pool: pool, appends: appends}
}

// StreamID is the event stream of an order; also its Kafka partition key.
func StreamID(orderID string) string { return "order-" + orderID }

// Add appends the new order's events in one transaction, with the request's
// correlation id and trace context, and marks them committed. With the
// repository's group commit, the orders added while others are being
// stored wait for those and are then stored together, with one statement:
// under load, one commit for many orders.
func (r *OrderRepository) Add(ctx context.Context, o *order.Order) error {
	ctx, end := r.appends.Start(ctx)
	defer end()
	err := eventstore.Commit[order.Event](ctx, r.pool, StreamID(o.ID()), o, eventstore.ContextFrom(ctx))
	if errors.Is(err, eventstore.ErrVersionConflict) {
		return fmt.Errorf("%w: %s", ErrOrderExists, o.ID())
	}
	return err
}

// AddIdempotent stores the order and its idempotency key in one transaction,
// unless the key is already stored: then it returns the key's first order id
// and request hash, and stores nothing. A concurrent request with the same
// key waits for the first to commit and then finds its key.
func (r *OrderRepository) AddIdempotent(ctx context.Context, o *order.Order, key, requestHash string) (firstID, firstHash string, err error) {
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (key, request_hash, order_id) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING`,
			key, requestHash, o.ID())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return tx.QueryRow(ctx, `SELECT order_id::text, request_hash FROM idempotency_keys WHERE key = $1`, key).Scan(&firstID, &firstHash)
		}
		return eventstore.SaveTx(ctx, tx, StreamID(o.ID()), o.OriginalVersion(), eventstore.ContextFrom(ctx), o.Changes())
	})
	if err == nil && firstID == "" {
		o.MarkCommitted()
	}
	return firstID, firstHash, err
}

// Update loads the order, applies update and appends the resulting events
// only if the stream is still at the version it was loaded at; the order it
// returns has them marked committed.
func (r *OrderRepository) Update(ctx context.Context, id string, expectedVersion int64, update func(*order.Order) error) (*order.Order, error) {
	o, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if expectedVersion != order.AnyVersion && expectedVersion != o.Version() {
		return nil, fmt.Errorf("%w: order %s is at version %d, not %d", order.ErrVersionMismatch, id, o.Version(), expectedVersion)
	}
	if err := update(o); err != nil {
		return nil, err
	}
	err = eventstore.Commit[order.Event](ctx, r.pool, StreamID(id), o, eventstore.ContextFrom(ctx))
	if errors.Is(err, eventstore.ErrVersionConflict) {
		return nil, fmt.Errorf("%w: %v", order.ErrConcurrentUpdate, err)
	}
	return o, err
}

// Events returns the order's stream as stored.
func (r *OrderRepository) Events(ctx context.Context, id string) ([]eventstore.RecordedEvent, error) {
	events, err := eventstore.Load(ctx, r.pool, StreamID(id))
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %s", order.ErrNotFound, id)
	}
	return events, err
}

// Get loads an order by folding its stream.
func (r *OrderRepository) Get(ctx context.Context, id string) (*order.Order, error) {
	events, err := Events.Load(ctx, r.pool, StreamID(id))
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %s", order.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	return order.FromEvents(events)
}

// Events decodes the order's stored events, in whatever schema version
// they were stored.
var Events = eventstore.NewDecoder(contracts.Upcast,
	eventstore.As[order.OrderPlaced, order.Event](),
	eventstore.As[order.OrderPaid, order.Event](),
	eventstore.As[order.OrderPaymentFailed, order.Event](),
	eventstore.As[order.OrderPaymentTimedOut, order.Event](),
	eventstore.As[order.OrderCancelled, order.Event](),
	eventstore.As[order.OrderRefundRequested, order.Event](),
	eventstore.As[order.OrderRefunded, order.Event](),
)
