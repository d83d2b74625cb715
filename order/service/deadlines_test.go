package service_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/ports"
	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/config"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/testenv"
)

// Orders past a deadline show in /metrics, read from the store: one still
// placed after ORDER_PAYMENT_TIMEOUT (no replica has timed it out: none
// checks deadlines here) and one whose refund was asked for longer ago than
// ORDER_REFUND_TIMEOUT, which nothing resolves by itself: alert on it.
func TestOverdueOrdersShowInMetrics(t *testing.T) {
	pool, url := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	cfg := service.Config{
		Service:   config.Service{DatabaseURL: url, KafkaBrokers: []string{"127.0.0.1:1"}},
		Projector: projections.Settings{Enabled: true, PollInterval: 10 * time.Millisecond, BatchSize: 100},
		Deadlines: ports.DeadlineSettings{PaymentTimeout: time.Millisecond, RefundTimeout: time.Millisecond},
	}
	svc, err := service.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx, stop := context.WithCancel(context.Background())
	projected := make(chan error, 1)
	go func() { projected <- svc.Project(ctx) }()
	defer func() { stop(); <-projected }()
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	var ids []string
	for range 2 {
		resp, err := http.Post(srv.URL+"/v1/orders", "application/json", strings.NewReader(
			`{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":100}]}`))
		if err != nil {
			t.Fatal(err)
		}
		var placed struct {
			OrderID string `json:"order_id"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&placed)
		resp.Body.Close()
		ids = append(ids, placed.OrderID)
	}
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
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), `order_overdue_orders{status="placed"} 1`) &&
			strings.Contains(string(body), `order_overdue_orders{status="refund_requested"} 1`) &&
			strings.Contains(string(body), "order_payment_timeouts_total 0")
	})
}
