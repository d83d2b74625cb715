// Package e2e runs the whole pipeline as separate processes, the way a user
// runs it: order (HTTP API and forwarder) and payment binaries, PostgreSQL,
// and the development Kafka broker.
package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/es-outbox/reference/payment/adapters"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/testenv"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestOrderOverHTTPEndsWithPaymentRecorded(t *testing.T) {
	_, orderDB := testenv.Database(t, eventstore.Migrations)
	paymentPool, paymentDB := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	brokers := testenv.Kafka(t)
	addr, paymentAddr := freeAddr(t), freeAddr(t)
	common := []string{"KAFKA_BROKERS=" + brokers[0], "LOG_LEVEL=warn"}
	testenv.Start(t, testenv.Build(t, "github.com/es-outbox/reference/order/cmd/order"),
		append(common, "DATABASE_URL="+orderDB, "HTTP_ADDR="+addr), "serve")
	testenv.Start(t, testenv.Build(t, "github.com/es-outbox/reference/payment/cmd/payment"),
		append(common, "DATABASE_URL="+paymentDB, "GATEWAY_APPROVE_LIMIT=10000", "PAYMENT_HTTP_ADDR="+paymentAddr), "serve")

	var resp *http.Response
	testenv.Eventually(t, 30*time.Second, "the order API up", func() bool {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/orders", strings.NewReader(
			`{"customer_id":"c-7","currency":"EUR","items":[{"sku":"book","quantity":3,"unit_price":1500}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Correlation-ID", "e2e-1")
		var err error
		resp, err = http.DefaultClient.Do(req)
		return err == nil
	})
	var created struct {
		OrderID string `json:"order_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.OrderID == "" {
		t.Fatalf("POST /v1/orders = %d", resp.StatusCode)
	}

	// Kafka holds the event with its headers, read with an independent client.
	records := testenv.Records(t, brokers, "order.events", 1, 30*time.Second)
	if len(records) != 1 {
		t.Fatalf("order.events holds %d records, want 1", len(records))
	}
	r := records[0]
	stream := "order-" + created.OrderID
	if string(r.Key) != stream {
		t.Errorf("Kafka key %q, want %q", r.Key, stream)
	}
	for k, want := range map[string]string{
		"event_type": contracts.OrderPlacedType, "schema_version": "1", "stream_id": stream,
		"stream_version": "1", "correlation_id": "e2e-1",
	} {
		if got := testenv.Header(r, k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if len(testenv.Header(r, "event_id")) != 36 || !strings.HasPrefix(testenv.Header(r, "traceparent"), "00-") {
		t.Errorf("event_id %q or traceparent %q missing", testenv.Header(r, "event_id"), testenv.Header(r, "traceparent"))
	}

	// The payment service charged it and recorded the payment.
	var outcome, correlation string
	testenv.Eventually(t, 30*time.Second, "the payment recorded", func() bool {
		err := paymentPool.QueryRow(context.Background(),
			`SELECT event_type, correlation_id FROM events WHERE stream_id = $1`, adapters.StreamID(created.OrderID),
		).Scan(&outcome, &correlation)
		return err == nil
	})
	if outcome != contracts.PaymentSucceededType || correlation != "e2e-1" {
		t.Errorf("payment outcome %s with correlation id %q; want %s with e2e-1", outcome, correlation, contracts.PaymentSucceededType)
	}

	// The payment service's own HTTP API answers too.
	livez, err := http.Get("http://" + paymentAddr + "/livez")
	if err != nil {
		t.Fatalf("payment GET /livez: %v", err)
	}
	livez.Body.Close()
	if livez.StatusCode != http.StatusOK {
		t.Errorf("payment GET /livez = %d, want 200", livez.StatusCode)
	}
}
