package adapters_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// placed is a new order, not yet stored.
func placed(t *testing.T) *order.Order {
	t.Helper()
	o, err := order.Place(order.PlaceOrder{OrderID: uuid.NewString(), CustomerID: "c-1", Currency: "EUR",
		Items: []order.LineItem{{SKU: "book", Quantity: 1, UnitPrice: 1_000}}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// addAll adds the orders at the same time and returns each Add's error.
func addAll(repo *adapters.OrderRepository, orders []*order.Order) []error {
	errs := make([]error, len(orders))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, o := range orders {
		wg.Go(func() {
			<-start
			errs[i] = repo.Add(context.Background(), o)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func TestOrdersAddedAtTheSameTimeAreStoredTogether(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	repo := adapters.NewOrderRepository(pool, eventstore.NewGroupCommit(pool, 0))
	ctx := context.Background()
	const n = 20
	orders := make([]*order.Order, n)
	for i := range orders {
		orders[i] = placed(t)
	}

	for i, err := range addAll(repo, orders) {
		if err != nil {
			t.Fatalf("Add of order %d: %v", i, err)
		}
		got, err := repo.Get(ctx, orders[i].ID())
		if err != nil {
			t.Fatal(err)
		}
		if got.Version() != 1 || got.Total() != 1_000 {
			t.Errorf("order %s stored at version %d with total %d, want 1 and 1000", got.ID(), got.Version(), got.Total())
		}
	}
	// While one statement is stored, the orders added meanwhile wait for
	// it and go together: fewer transactions than orders.
	var transactions int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT transaction_id) FROM events`).Scan(&transactions); err != nil {
		t.Fatal(err)
	}
	if transactions >= n {
		t.Errorf("%d orders added at the same time were stored by %d transactions, want fewer", n, transactions)
	}
	t.Logf("%d orders added at the same time: %d transactions", n, transactions)
}

func TestAnOrderAddedTwiceAmongOthersFailsAlone(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	repo := adapters.NewOrderRepository(pool, eventstore.NewGroupCommit(pool, 0))
	ctx := context.Background()
	first := placed(t)
	if err := repo.Add(ctx, first); err != nil {
		t.Fatal(err)
	}
	again, err := order.Place(order.PlaceOrder{OrderID: first.ID(), CustomerID: "c-2", Currency: "EUR",
		Items: []order.LineItem{{SKU: "pen", Quantity: 2, UnitPrice: 100}}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	orders := []*order.Order{placed(t), placed(t), again, placed(t), placed(t)}

	errs := addAll(repo, orders)
	for i, o := range orders {
		if o == again {
			if !errors.Is(errs[i], adapters.ErrOrderExists) {
				t.Errorf("adding an order that exists: %v, want ErrOrderExists", errs[i])
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("Add of order %d beside one that exists: %v", i, errs[i])
		}
		if _, err := repo.Get(ctx, o.ID()); err != nil {
			t.Errorf("order %d beside one that exists: %v", i, err)
		}
	}
	got, err := repo.Get(ctx, first.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.Total() != 1_000 || got.Version() != 1 {
		t.Errorf("the order added twice: version %d, total %d, want the first's: 1, 1000", got.Version(), got.Total())
	}
}
