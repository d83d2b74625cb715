package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/es-outbox/reference/payment/adapters"
	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/shared/devtools/testenv"
)

// Charges asked for at the same time, as a consumer asks for a batch's, are
// written to the ledger together: each order is still charged once, a
// repeated order id gets its first charge (whether it was stored before or
// asked for twice at once), and a charge the ledger refuses fails alone.
func TestChargesAskedForTogetherAreEachStoredOnce(t *testing.T) {
	pool, _ := testenv.Database(t, adapters.Migrations)
	ctx := context.Background()
	gateway := adapters.NewSimulatedGateway(pool, adapters.GatewayConfig{ApproveLimit: 1000})
	before, err := gateway.Charge(ctx, payment.Request{OrderID: "o-before", Amount: 500, Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}

	requests := []payment.Request{{OrderID: "o-before", Amount: 500, Currency: "EUR"}}
	for i := range 40 {
		requests = append(requests, payment.Request{OrderID: fmt.Sprintf("o-%d", i), Amount: int64(900 + 10*i), Currency: "EUR"})
	}
	for range 5 {
		requests = append(requests, payment.Request{OrderID: "o-twice", Amount: 700, Currency: "EUR"})
	}
	// PostgreSQL refuses a NUL byte in text.
	requests = append(requests, payment.Request{OrderID: "o-refused", Amount: 700, Currency: "EU\x00R"})

	charges := make([]payment.Charge, len(requests))
	errs := make([]error, len(requests))
	var start, done sync.WaitGroup
	start.Add(1)
	for i, req := range requests {
		done.Go(func() {
			start.Wait()
			charges[i], errs[i] = gateway.Charge(ctx, req)
		})
	}
	start.Done()
	done.Wait()

	var twice string
	for i, req := range requests {
		c, err := charges[i], errs[i]
		switch {
		case req.OrderID == "o-refused":
			if !errors.Is(err, payment.ErrTransient) {
				t.Errorf("the charge the ledger refuses gives %v, want a transient error", err)
			}
		case err != nil:
			t.Errorf("charge of %s: %v", req.OrderID, err)
		case req.OrderID == "o-before" && c != before:
			t.Errorf("o-before, charged again, gives %+v, want its first charge %+v", c, before)
		case req.OrderID == "o-twice" && twice != "" && c.ID != twice:
			t.Errorf("o-twice, asked for at the same time, gives the charges %s and %s, want one", twice, c.ID)
		case req.OrderID == "o-twice":
			twice = c.ID
		case c.Approved != (req.Amount <= 1000):
			t.Errorf("%s of %d: approved %v", req.OrderID, req.Amount, c.Approved)
		}
	}

	rows, err := pool.Query(ctx, `SELECT idempotency_key, count(*), min(charge_id::text) FROM gateway_charges GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]string{}
	for rows.Next() {
		var key, chargeID string
		var n int
		if err := rows.Scan(&key, &n, &chargeID); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%s has %d charges in the ledger, want 1", key, n)
		}
		stored[key] = chargeID
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 42 || stored["o-twice"] != twice || stored["o-before"] != before.ID || stored["o-refused"] != "" {
		t.Errorf("the ledger holds %d orders (o-twice %q, o-before %q, o-refused %q), want the 42 charged, as they were answered (%q, %q) and not o-refused",
			len(stored), stored["o-twice"], stored["o-before"], stored["o-refused"], twice, before.ID)
	}
	if n := gateway.Charges(); n != 42 {
		t.Errorf("the gateway counts %d new charges, want 42 (o-before and o-twice once each)", n)
	}
}

// A database starts empty, autovacuum analyzes the ledger while it is
// small, and a statement a connection has run a few times keeps the plan
// PostgreSQL made for the table as it was then: for a tiny table, reading
// all of it. The ledger must still find the charges stored before by their
// key once it holds many.
func TestTheLedgerFindsStoredChargesByKeyAfterItGrew(t *testing.T) {
	pool, url := testenv.Database(t, adapters.Migrations)
	ctx := context.Background()
	one := testenv.OneConnection(t, url, "ledger under test")
	gateway := adapters.NewSimulatedGateway(one, adapters.GatewayConfig{ApproveLimit: 1000})
	charge := func(order string) payment.Charge {
		t.Helper()
		c, err := gateway.Charge(ctx, payment.Request{OrderID: order, Amount: 500, Currency: "EUR"})
		if err != nil {
			t.Fatalf("charge of %s: %v", order, err)
		}
		return c
	}
	first := charge("o-first")
	if _, err := pool.Exec(ctx, `ANALYZE gateway_charges`); err != nil {
		t.Fatal(err)
	}
	for i := range 10 { // more than the five runs after which PostgreSQL may keep one plan
		charge(fmt.Sprintf("o-small-%d", i))
	}
	const charges = 5_000
	if _, err := pool.Exec(ctx, `INSERT INTO gateway_charges (idempotency_key, charge_id, amount, currency, approved)
		SELECT 'o-' || i, gen_random_uuid(), 500, 'EUR', true FROM generate_series(1, $1) AS i`, charges); err != nil {
		t.Fatal(err)
	}
	if again := charge("o-first"); again != first {
		t.Errorf("o-first, charged again, gives %+v, want its first charge %+v", again, first)
	}
	charge("o-new")
	one.Close()

	testenv.Closed(t, pool, "ledger under test")
	// Finding the charges of the first orders in the small ledger read a
	// few rows at a time; reading the grown one once is more than all of
	// those together.
	if scanned := testenv.RowsScanned(t, pool.QueryRow, "gateway_charges"); scanned >= charges {
		t.Errorf("the ledger read %d of its rows one by one, %d charges or more: it scanned the whole table to find a few", scanned, charges)
	}
}
