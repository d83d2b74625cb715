// Package adapters implements the payment service's ports: the payment
// repository on the shared event store, the simulated gateway, the poison
// store and the publisher that requeues poisoned messages.
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
	"github.com/es-outbox/reference/shared/messaging"
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
func StreamID(orderID string) string { return "payment-" + orderID }

// Get loads the order's payment.
func (r *PaymentRepository) Get(ctx context.Context, orderID string) (*payment.Payment, error) {
	recorded, err := eventstore.Load(ctx, r.pool, StreamID(orderID))
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: order %s", payment.ErrNotFound, orderID)
	}
	if err != nil {
		return nil, err
	}
	events := make([]payment.Event, len(recorded))
	for i, e := range recorded {
		if events[i], err = decode(e); err != nil {
			return nil, err
		}
	}
	return payment.FromEvents(events)
}

// Save appends the payment's new events with the consumed message's
// correlation id and trace context.
func (r *PaymentRepository) Save(ctx context.Context, p *payment.Payment) error {
	err := eventstore.Save(ctx, r.pool, StreamID(p.OrderID()), p.OriginalVersion(), messaging.EventContext(ctx), p.Changes())
	if errors.Is(err, eventstore.ErrVersionConflict) {
		return fmt.Errorf("%w: order %s: %v", payment.ErrConcurrentUpdate, p.OrderID(), err)
	}
	return err
}

// CountOutcomes counts the outcome events in the store.
func (r *PaymentRepository) CountOutcomes(ctx context.Context) (map[payment.Status]int64, error) {
	outcomes := map[string]payment.Status{
		contracts.PaymentSucceededType: payment.StatusSucceeded,
		contracts.PaymentDeclinedType:  payment.StatusDeclined,
		contracts.PaymentRefundedType:  payment.StatusRefunded,
	}
	counts := map[payment.Status]int64{payment.StatusSucceeded: 0, payment.StatusDeclined: 0, payment.StatusRefunded: 0}
	rows, err := r.pool.Query(ctx, `SELECT event_type, count(*) FROM events WHERE event_type = ANY($1) GROUP BY event_type`,
		[]string{contracts.PaymentSucceededType, contracts.PaymentDeclinedType, contracts.PaymentRefundedType})
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
		counts[outcomes[t]] = n
	}
	return counts, rows.Err()
}

func decode(e eventstore.RecordedEvent) (payment.Event, error) {
	switch {
	case e.Type == contracts.PaymentRequestedType && e.SchemaVersion == contracts.PaymentRequestedVersion:
		return eventstore.Decode[payment.PaymentRequested](e)
	case e.Type == contracts.PaymentRefundRequestedType && e.SchemaVersion == contracts.PaymentRefundRequestedVersion:
		return eventstore.Decode[payment.PaymentRefundRequested](e)
	case e.Type == contracts.PaymentRefundedType && e.SchemaVersion == contracts.PaymentRefundedVersion:
		return eventstore.Decode[payment.PaymentRefunded](e)
	case e.Type == contracts.PaymentSucceededType && e.SchemaVersion == contracts.PaymentSucceededVersion:
		return eventstore.Decode[payment.PaymentSucceeded](e)
	case e.Type == contracts.PaymentDeclinedType && e.SchemaVersion == contracts.PaymentDeclinedVersion:
		return eventstore.Decode[payment.PaymentDeclined](e)
	}
	return nil, fmt.Errorf("event %s: unknown type %s v%d", e.ID, e.Type, e.SchemaVersion)
}
