package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/envconfig"
)

// BenchmarkPlaceOrder measures POST /v1/orders with an Idempotency-Key from
// 32 concurrent clients, through the real handler and an in-process HTTP
// server, beside a raw baseline: the same rows (the idempotency key and the
// OrderPlaced event) inserted with pgx in one transaction per request, at
// the same concurrency and with a pool of the same size.
//
//	go test -run '^$' -bench PlaceOrder -benchtime 1x -count 3 ./order/service/
func BenchmarkPlaceOrder(b *testing.B) {
	const clients, duration = 32, 5 * time.Second
	// The same order as rawPlaceOrder's.
	const body = `{"customer_id":"customer-7","currency":"EUR","items":[{"sku":"book","quantity":2,"unit_price":1250}]}`
	for range b.N {
		_, pool, srv := newService(b, service.Config{Service: envconfig.Service{KafkaBrokers: []string{"127.0.0.1:1"}}}) // no Kafka needed, but one named
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		post := func() error {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/orders", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", uuid.NewString())
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				return fmt.Errorf("POST /v1/orders = %d", resp.StatusCode)
			}
			return nil
		}
		insert := rawPlaceOrder(b)
		raw := func() error {
			return pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error { return insert(tx) })
		}

		project, projectLatencies := measure(b, clients, duration, post)
		baseline, baselineLatencies := measure(b, clients, duration, raw)

		b.ReportMetric(project, "req/s")
		b.ReportMetric(baseline, "baseline_req/s")
		b.ReportMetric(testenv.Percentile(projectLatencies, 99), "p99_ms")
		b.ReportMetric(testenv.Percentile(baselineLatencies, 99), "baseline_p99_ms")
	}
}

// measure warms up for a second, then runs call from clients goroutines.
func measure(b *testing.B, clients int, d time.Duration, call func() error) (perSecond float64, latencies []float64) {
	b.Helper()
	if _, _, err := testenv.Concurrently(clients, time.Second, call); err != nil {
		b.Fatal(err)
	}
	perSecond, latencies, err := testenv.Concurrently(clients, d, call)
	if err != nil {
		b.Fatal(err)
	}
	return perSecond, latencies
}

// rawPlaceOrder returns what the baseline does per request: insert the rows
// that POSTing body with an Idempotency-Key writes, with the event's payload
// as the handler encodes it.
func rawPlaceOrder(b *testing.B) func(pgx.Tx) error {
	o, err := order.Place(order.PlaceOrder{OrderID: uuid.NewString(), CustomerID: "customer-7", Currency: "EUR",
		Items: []order.LineItem{{SKU: "book", Quantity: 2, UnitPrice: 1250}}}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	placed := o.Changes()[0]
	payload, err := json.Marshal(placed)
	if err != nil {
		b.Fatal(err)
	}
	return func(tx pgx.Tx) error {
		ctx, id := context.Background(), uuid.New()
		if _, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (key, request_hash, order_id) VALUES ($1, $2, $3)`,
			uuid.NewString(), "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, payload, correlation_id)
			VALUES ($1, 1, $2, $3, $4, $5, $6)`,
			adapters.StreamID(id.String()), uuid.New(), placed.EventType(), placed.SchemaVersion(), payload, uuid.NewString())
		return err
	}
}
