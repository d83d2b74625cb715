// Package poisontest gives the poison queue's tests, in shared/poison and in
// both services, the same poisoned message to work on.
package poisontest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/poison"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisonkafka"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
)

// Entry is a truncated OrderPlaced the payment consumer poisoned: entry
// "0-3" on payment.poison, consumed from order.events partition 2 offset 7
// with key "order-broken".
func Entry() poison.Entry {
	const reason = "order.OrderPlaced payload is not valid: unexpected end of JSON input"
	return poison.Entry{
		ID: "0-3", Record: poison.Position{Topic: "payment.poison", Partition: 0, Offset: 3},
		PoisonedAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), Reason: reason,
		Origin: poison.Position{Topic: "order.events", Partition: 2, Offset: 7}, Key: "order-broken",
		Handler: "charge_order", EventType: "order.OrderPlaced", MessageID: "event-1",
		Metadata: map[string]string{
			"event_id": "event-1", "event_type": "order.OrderPlaced", "topic_poisoned": "order.events", "reason_poisoned": reason,
		},
		Payload: []byte(`{"order_id": "bro`), Status: poison.StatusNew,
	}
}

// NewQueue returns the poison queue in pool's database (migrated with
// poisonstore.Migrations), holding Entry, requeueing to brokers; its
// publisher is closed when the test ends.
func NewQueue(t testing.TB, pool *pgxpool.Pool, brokers []string) (*poisonapp.Queue, *poisonstore.Store) {
	t.Helper()
	store := poisonstore.NewStore(pool)
	if _, err := store.Add(context.Background(), Entry()); err != nil {
		t.Fatal(err)
	}
	publisher := poisonkafka.NewRequeuePublisher(brokers, "test-requeue")
	t.Cleanup(func() { _ = publisher.Close() })
	return poisonapp.NewQueue(store, publisher, slog.New(slog.NewTextHandler(io.Discard, nil))), store
}

// API is, for a test, an HTTP API serving the poison-queue admin endpoints
// over the queue of NewQueue.
type API struct {
	t testing.TB
	// URL is the API's base URL.
	URL string
	// Brokers are the brokers the queue requeues to.
	Brokers []string
	// Store is the queue's store, holding Entry.
	Store *poisonstore.Store
}

// NewAPI serves, until the test ends, the handler that handler builds around
// the poison queue of NewQueue in pool's database, requeueing to a fresh
// broker.
func NewAPI(t testing.TB, pool *pgxpool.Pool, handler func(*poisonapp.Queue) http.Handler) *API {
	t.Helper()
	brokers := testenv.Kafka(t)
	queue, store := NewQueue(t, pool, brokers)
	srv := httptest.NewServer(handler(queue))
	t.Cleanup(srv.Close)
	return &API{t: t, URL: srv.URL, Brokers: brokers, Store: store}
}

// Do calls the API (see testenv.DoJSON).
func (a *API) Do(method, path, auth, body string, out any) int {
	a.t.Helper()
	return testenv.DoJSON(a.t, method, a.URL+path, auth, body, out)
}
