package projections_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// Events stored in an older shape stay readable: OrderPlaced v1 had no
// total. Stored v1 events are folded by the repository and replayed into
// the read models with the total the upcaster computes from their items.
func TestReplayReadsStoredOldVersionEvents(t *testing.T) {
	pool := newDatabase(t)
	ctx := context.Background()
	orderID := uuid.NewString()
	v1 := eventstore.Event{ID: uuid.NewString(), Type: contracts.OrderPlacedType, SchemaVersion: 1, Payload: []byte(`{
		"order_id": "` + orderID + `", "customer_id": "old-customer", "currency": "EUR", "placed_at": "2026-01-02T03:04:05Z",
		"items": [{"sku": "a", "quantity": 3, "unit_price": 1000}, {"sku": "b", "quantity": 1, "unit_price": 250}]}`)}
	if err := eventstore.Append(ctx, pool, adapters.StreamID(orderID), 0, eventstore.Context{}, v1); err != nil {
		t.Fatal(err)
	}

	o, err := adapters.NewOrderRepository(pool, nil).Get(ctx, orderID)
	if err != nil {
		t.Fatal(err)
	}
	if o.Total() != 3250 || o.CustomerID() != "old-customer" || len(o.Items()) != 2 {
		t.Errorf("order folded from a v1 event: total %d, customer %q, %d items; want 3250, old-customer, 2", o.Total(), o.CustomerID(), len(o.Items()))
	}

	testenv.WaitEventsReadable(t, pool) // other tests' open transactions may hide it a moment
	for _, p := range projections.All {
		if _, err := projections.Replay(ctx, pool, p, projections.ReplayOptions{}); err != nil {
			t.Fatalf("replay %s: %v", p.Name, err)
		}
	}
	var total, revenue int64
	if err := pool.QueryRow(ctx, `SELECT total FROM order_summaries WHERE order_id = $1`, orderID).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT revenue FROM order_daily_stats WHERE status = 'placed'`).Scan(&revenue); err != nil {
		t.Fatal(err)
	}
	if total != 3250 || revenue != 3250 {
		t.Errorf("replayed read models: total %d, revenue %d; want 3250 from the upcast v1 event", total, revenue)
	}
}
