package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/ports"
	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/envconfig"
	"github.com/es-outbox/reference/shared/eventstore"
)

// Orders past a deadline show in /metrics, read from the store: one still
// placed after ORDER_PAYMENT_TIMEOUT (no replica has timed it out: none
// checks deadlines here) and one whose refund was asked for longer ago than
// ORDER_REFUND_TIMEOUT, which nothing resolves by itself: alert on it.
func TestOverdueOrdersShowInMetrics(t *testing.T) {
	svc, pool, srv := newService(t, service.Config{
		Service:   envconfig.Service{KafkaBrokers: []string{"127.0.0.1:1"}},
		Projector: projections.Settings{Enabled: true, PollInterval: 10 * time.Millisecond, BatchSize: 100},
		Deadlines: ports.DeadlineSettings{PaymentTimeout: time.Millisecond, RefundTimeout: time.Millisecond},
	})
	testenv.Go(t, "projector", svc.Project)
	ctx := context.Background()
	ids := []string{placeOrder(t, srv.URL, "c", 100), placeOrder(t, srv.URL, "c", 100)}
	// The second is paid and cancelled: its refund never completes.
	at := time.Now().UTC().Format(time.RFC3339Nano)
	if err := eventstore.Append(ctx, pool, adapters.StreamID(ids[1]), 1, eventstore.Context{},
		eventstore.Event{ID: uuid.NewString(), Type: contracts.OrderPaidType, SchemaVersion: 1,
			Payload: []byte(`{"order_id":"` + ids[1] + `","charge_id":"ch","amount":100,"at":"` + at + `"}`)},
		eventstore.Event{ID: uuid.NewString(), Type: contracts.OrderRefundRequestedType, SchemaVersion: 1,
			Payload: []byte(`{"order_id":"` + ids[1] + `","amount":100,"currency":"EUR","reason":"r","at":"` + at + `"}`)},
	); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "both overdue orders in /metrics", func() bool {
		_, body := call(t, http.MethodGet, srv.URL+"/metrics", "")
		return strings.Contains(body, `order_overdue_orders{status="placed"} 1`) &&
			strings.Contains(body, `order_overdue_orders{status="refund_requested"} 1`) &&
			strings.Contains(body, "order_payment_timeouts_total 0")
	})
}

// Orders that cannot be timed out here (they hold an event of a newer
// version) do not hold the others back, however many come first.
func TestUnloadableOrdersDoNotHoldOtherDeadlinesBack(t *testing.T) {
	ctx := context.Background()
	r := serve(t, func(cfg *service.Config) {
		cfg.Deadlines = ports.DeadlineSettings{PaymentTimeout: time.Millisecond, RefundTimeout: time.Hour, CheckInterval: 20 * time.Millisecond}
	})
	pool := r.pool
	place := func(at time.Time, extra ...eventstore.Event) string {
		id := uuid.NewString()
		payload, _ := json.Marshal(contracts.OrderPlaced{OrderID: id, CustomerID: "c", Currency: "EUR", Total: 100, PlacedAt: at,
			Items: []contracts.LineItem{{SKU: "a", Quantity: 1, UnitPrice: 100}}})
		events := append([]eventstore.Event{{ID: uuid.NewString(), Type: contracts.OrderPlacedType, SchemaVersion: contracts.OrderPlacedVersion, Payload: payload}}, extra...)
		if err := eventstore.Append(ctx, pool, adapters.StreamID(id), 0, eventstore.Context{}, events...); err != nil {
			t.Fatal(err)
		}
		return id
	}
	start := time.Now().Add(-time.Hour)
	for i := range 150 {
		place(start.Add(time.Duration(i)*time.Second), eventstore.Event{ID: uuid.NewString(), Type: "order.OrderShipped", SchemaVersion: 1, Payload: []byte(`{}`)})
	}
	last := place(start.Add(time.Minute * 30))
	testenv.Eventually(t, 60*time.Second, "the loadable order timed out behind 150 that cannot be", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = $2`, adapters.StreamID(last), contracts.OrderPaymentTimedOutType).Scan(&n)
		return n == 1
	})
}
