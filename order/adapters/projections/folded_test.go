package projections

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// An order placed in one batch and paid in a later one: the projector
// folds the later batch from what it folded before, without reading the
// order's stream again. The later batch is applied in a database that does
// not hold the order at all, so a load would fail; the state is the same
// as folding the whole stream.
func TestTheProjectorFoldsAnOrdersNextEventsFromWhatItFoldedBefore(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	empty, _ := testenv.Database(t, eventstore.Migrations)
	ctx := context.Background()
	orders := adapters.NewOrderRepository(pool, nil)
	placed, err := order.Place(order.PlaceOrder{OrderID: "o-1", CustomerID: "c-1", Currency: "EUR",
		Items: []order.LineItem{{SKU: "sku-1", Quantity: 2, UnitPrice: 500}}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := orders.Add(ctx, placed); err != nil {
		t.Fatal(err)
	}
	if _, err := orders.Update(ctx, "o-1", 1, func(o *order.Order) error {
		return o.RecordPaymentSucceeded("ch-1", 1000, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitEventsReadable(t, pool)
	events, err := eventstore.ReadAll(ctx, pool, eventstore.Start, 10)
	if err != nil || len(events) != 2 {
		t.Fatalf("read %d events (%v), want the order placed and paid", len(events), err)
	}

	earlier := newFolded()
	changesIn := func(db interface {
		Begin(context.Context) (pgx.Tx, error)
	}, batch []eventstore.RecordedEvent, earlier *folded) []Change {
		t.Helper()
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		changes, _, err := changesOf(ctx, tx, batch, earlier)
		if err != nil {
			t.Fatal(err)
		}
		return changes
	}
	changesIn(pool, events[:1], earlier)
	paid := changesIn(empty, events[1:], earlier)
	loaded := changesIn(pool, events[1:], nil)
	if len(paid) != 1 || paid[0].Before == nil || paid[0].Before.Status() != order.StatusPlaced || paid[0].After.Status() != order.StatusPaid ||
		paid[0].After.Total() != loaded[0].After.Total() || paid[0].After.Version() != loaded[0].After.Version() {
		t.Fatalf("the paid batch folded from what came before gives %+v, want the order placed before and paid after, as loading it gives (%+v)", paid, loaded)
	}
}
