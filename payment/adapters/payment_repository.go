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

// Add appends the payment's new events with the consumed message's
// correlation id and trace context.
func (r *PaymentRepository) Add(ctx context.Context, p *payment.Payment) error {
	err := eventstore.Save(ctx, r.pool, StreamID(p.OrderID()), p.OriginalVersion(), messaging.EventContext(ctx), p.Changes())
	if errors.Is(err, eventstore.ErrVersionConflict) {
		return fmt.Errorf("%w: order %s", payment.ErrAlreadyRecorded, p.OrderID())
	}
	return err
}

func decode(e eventstore.RecordedEvent) (payment.Event, error) {
	switch {
	case e.Type == contracts.PaymentSucceededType && e.SchemaVersion == contracts.PaymentSucceededVersion:
		return eventstore.Decode[payment.PaymentSucceeded](e)
	case e.Type == contracts.PaymentDeclinedType && e.SchemaVersion == contracts.PaymentDeclinedVersion:
		return eventstore.Decode[payment.PaymentDeclined](e)
	}
	return nil, fmt.Errorf("event %s: unknown type %s v%d", e.ID, e.Type, e.SchemaVersion)
}
