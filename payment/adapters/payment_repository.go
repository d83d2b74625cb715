// Package adapters implements the payment service's ports: the payment
// repository on the shared event store and the simulated gateway. (Its
// poison queue is the shared one: shared/poison.)
package adapters

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/postgres"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates the payment service's own tables (besides the event store's).
var Migrations = postgres.NewMigration(migrationFiles, "migrations", "payment_schema_version")

// PaymentRepository stores each payment as the event stream "payment-<order id>".
type PaymentRepository struct {
	pool *pgxpool.Pool
}

// NewPaymentRepository returns a repository on the event store in pool.
func NewPaymentRepository(pool *pgxpool.Pool) *PaymentRepository {
	return &PaymentRepository{pool: pool}
}

// StreamID is the event stream of an order's payment.
func StreamID(orderID string) string { return contracts.PaymentKey(orderID) }

// Get loads the order's payment.
func (r *PaymentRepository) Get(ctx context.Context, orderID string) (*payment.Payment, error) {
	events, err := eventDecoder.Load(ctx, r.pool, StreamID(orderID))
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: order %s", payment.ErrNotFound, orderID)
	}
	if err != nil {
		return nil, err
	}
	return payment.FromEvents(events)
}

// Update loads the order's payment, or a new one, applies update and
// appends the resulting events, with the consumed message's correlation id
// and trace context, only if the stream is still at the version it was
// loaded at; the payment it returns has them marked committed.
func (r *PaymentRepository) Update(ctx context.Context, orderID string, update func(*payment.Payment) error) (*payment.Payment, error) {
	p, err := r.Get(ctx, orderID)
	if errors.Is(err, payment.ErrNotFound) {
		p, err = payment.New(orderID), nil
	}
	if err != nil {
		return nil, err
	}
	if err := update(p); err != nil {
		return nil, err
	}
	err = eventstore.Commit[payment.Event](ctx, r.pool, StreamID(orderID), p, eventstore.ContextFrom(ctx))
	if errors.Is(err, eventstore.ErrVersionConflict) {
		return nil, fmt.Errorf("%w: order %s: %v", payment.ErrConcurrentUpdate, orderID, err)
	}
	return p, err
}

// outcomeEvents are the events that record a payment's outcome.
var outcomeEvents = map[string]payment.Status{
	contracts.PaymentSucceededType: payment.StatusSucceeded,
	contracts.PaymentDeclinedType:  payment.StatusDeclined,
	contracts.PaymentRefundedType:  payment.StatusRefunded,
}

// CountOutcomes counts the outcome events in the store.
func (r *PaymentRepository) CountOutcomes(ctx context.Context) (map[payment.Status]int64, error) {
	types := make([]string, 0, len(outcomeEvents))
	counts := make(map[payment.Status]int64, len(outcomeEvents))
	for t, status := range outcomeEvents {
		types = append(types, t)
		counts[status] = 0
	}
	rows, err := r.pool.Query(ctx, `SELECT event_type, count(*) FROM events WHERE event_type = ANY($1) GROUP BY event_type`, types)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		var n int64
		if err := rows.Scan(&t, &n); err != nil {
			return nil, err
		}
		counts[outcomeEvents[t]] = n
	}
	return counts, rows.Err()
}

// eventDecoder decodes the payment's stored events, in whatever schema version
// they were stored.
var eventDecoder = eventstore.NewDecoder(contracts.Upcast,
	eventstore.As[payment.PaymentRequested, payment.Event](),
	eventstore.As[payment.PaymentSucceeded, payment.Event](),
	eventstore.As[payment.PaymentDeclined, payment.Event](),
	eventstore.As[payment.PaymentRefundRequested, payment.Event](),
	eventstore.As[payment.PaymentRefunded, payment.Event](),
)
