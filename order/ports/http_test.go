package ports_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/ports"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisonkafka"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
)

type env struct {
	*api
	pool *pgxpool.Pool
	app  *app.Application
}

func newServer(t *testing.T) (*httptest.Server, *pgxpool.Pool) {
	e := newEnv(t)
	return e.srv, e.pool
}

func newEnv(t *testing.T) *env {
	pool, _ := testenv.Database(t, eventstore.Migrations, adapters.Migrations, poisonstore.Migrations)
	application := app.New(adapters.NewOrderRepository(pool, nil))
	// A poison queue whose requeues could go nowhere: these tests never requeue.
	queue := poisonapp.NewQueue(poisonstore.NewStore(pool), poisonkafka.NewRequeuePublisher([]string{"127.0.0.1:1"}, "test"), slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(ports.NewHTTPHandler(application, queue, "", httpserver.Ops{}))
	t.Cleanup(srv.Close)
	return &env{api: newAPI(t, srv), pool: pool, app: application}
}

func (e *env) countEvents(t *testing.T) int {
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

const validOrder = `{"customer_id":"c-42","currency":"EUR","items":[{"sku":"book","quantity":2,"unit_price":1250},{"sku":"pen","quantity":1,"unit_price":300}]}`

func (e *env) place(t *testing.T) string {
	t.Helper()
	r := e.do("POST", "/v1/orders", nil, validOrder)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /v1/orders = %d %s", r.status, r.raw)
	}
	return r.body["order_id"].(string)
}

func TestPlaceOrderThenGetIt(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/orders", map[string]string{
		"X-Correlation-ID": "req-123",
		"traceparent":      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}, validOrder)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /v1/orders = %d %s, want 201", r.status, r.raw)
	}
	id := r.body["order_id"].(string)
	if loc := r.header.Get("Location"); loc != "/v1/orders/"+id {
		t.Errorf("Location = %q, want /v1/orders/%s", loc, id)
	}

	got := e.do("GET", "/v1/orders/"+id, nil, "")
	if got.status != 200 || got.body["status"] != "placed" || got.body["total"] != float64(2800) || got.body["currency"] != "EUR" ||
		len(got.body["items"].([]any)) != 2 || got.header.Get("ETag") != `"1"` {
		t.Errorf("GET = %d %s ETag %s; want the placed order with total 2800 at version 1", got.status, got.raw, got.header.Get("ETag"))
	}

	// The event carries the request's correlation id and trace.
	var corr, traceparent string
	_ = e.pool.QueryRow(context.Background(), `SELECT correlation_id, metadata->>'traceparent' FROM events WHERE stream_id = $1`, adapters.StreamID(id)).Scan(&corr, &traceparent)
	if corr != "req-123" || !strings.HasPrefix(traceparent, "00-0af7651916cd43dd8448eb211c80319c-") {
		t.Errorf("stored correlation id %q traceparent %q; want the request's", corr, traceparent)
	}
	events := e.do("GET", "/v1/orders/"+id+"/events", nil, "")
	if list, _ := events.body["events"].([]any); events.status != 200 || len(list) != 1 {
		t.Errorf("GET events = %d %s, want the one OrderPlaced", events.status, events.raw)
	}
}

func TestBadInputIsRejectedAndWritesNothing(t *testing.T) {
	e := newEnv(t)
	hugeItems := `{"customer_id":"c","currency":"EUR","items":[` + strings.Repeat(`{"sku":"a","quantity":1,"unit_price":1},`, 100) + `{"sku":"a","quantity":1,"unit_price":1}]}`
	cases := []struct {
		name, contentType, body string
		status                  int
		field                   string
	}{
		{"no customer", "application/json", `{"currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":1}]}`, 400, "customer_id"},
		{"no items", "application/json", `{"customer_id":"c","currency":"EUR","items":[]}`, 400, "items"},
		{"zero quantity", "application/json", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":0,"unit_price":1}]}`, 400, "items[0].quantity"},
		{"negative price", "application/json", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":-5}]}`, 400, "items[0].unit_price"},
		{"overflowing price", "application/json", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":99999999999999999999}]}`, 400, "items.unit_price"},
		{"missing sku", "application/json", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":1},{"quantity":1,"unit_price":1}]}`, 400, "items[1].sku"},
		{"bad currency", "application/json", `{"customer_id":"c","currency":"EURO","items":[{"sku":"a","quantity":1,"unit_price":1}]}`, 400, "currency"},
		{"unknown currency", "application/json", `{"customer_id":"c","currency":"XYZ","items":[{"sku":"a","quantity":1,"unit_price":1}]}`, 400, "currency"},
		{"too many items", "application/json", hugeItems, 400, "items"},
		{"string quantity", "application/json", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":"2","unit_price":1}]}`, 400, "items.quantity"},
		{"unknown field", "application/json", `{"customer_id":"c","currency":"EUR","coupon":"x","items":[{"sku":"a","quantity":1,"unit_price":1}]}`, 400, "coupon"},
		{"not json", "application/json", `{"customer_id":`, 400, "(body)"},
		{"trailing data", "application/json", validOrder + `{}`, 400, "(body)"},
		{"wrong content type", "text/plain", validOrder, 415, ""},
		{"oversized body", "application/json", `{"customer_id":"` + strings.Repeat("x", 70_000) + `"}`, 413, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/v1/orders", map[string]string{"Content-Type": c.contentType}, c.body)
			if r.status != c.status {
				t.Fatalf("status %d %s, want %d", r.status, r.raw, c.status)
			}
			errBody, _ := r.body["error"].(map[string]any)
			if errBody == nil || errBody["message"] == "" {
				t.Fatalf("body %s has no error message", r.raw)
			}
			if c.field != "" && errBody["field"] != c.field {
				t.Errorf("error names field %v, want %q (%v)", errBody["field"], c.field, errBody["message"])
			}
		})
	}
	if n := e.countEvents(t); n != 0 {
		t.Errorf("bad requests wrote %d events, want 0", n)
	}
}

// What the store cannot hold (NUL, which jsonb refuses, and other control
// characters; invalid UTF-8; overlong text) and numbers that are not whole
// are a 400 naming the field, in words a client understands; nothing is
// stored.
func TestStorageUnsafeInputIs400NamingTheField(t *testing.T) {
	e := newEnv(t)
	item := func(sku, price string) string {
		return `{"customer_id":"c","currency":"EUR","items":[{"sku":"` + sku + `","quantity":1,"unit_price":` + price + `}]}`
	}
	for _, c := range []struct {
		name, body, field, message string
	}{
		{"NUL in sku", item(`a\u0000b`, "1"), "items[0].sku", "must not contain control characters such as U+0000"},
		{"NUL in customer", `{"customer_id":"\u0000","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":1}]}`, "customer_id", "U+0000"},
		{"escape in sku", item(`a\u001bb`, "1"), "items[0].sku", "control characters"},
		{"invalid UTF-8", item("a\xff", "1"), "(body)", "is not valid UTF-8"},
		{"overlong sku", item(strings.Repeat("\u00e9", 65), "1"), "items[0].sku", "longer than 64 characters"},
		{"exponent price", item("a", "1e3"), "items.unit_price", "must be a whole number of minor units written without a fraction or exponent: 1000, not 1e3"},
		{"decimal price", item("a", "9.99"), "items.unit_price", "must be a whole number of minor units, not 9.99"},
		{"exponent quantity", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":2e0,"unit_price":1}]}`, "items.quantity", "must be a whole number written without a fraction or exponent: 2, not 2e0"},
		{"zero total", item("a", "0"), "items", "the order's total is 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/v1/orders", nil, c.body)
			errBody, _ := r.body["error"].(map[string]any)
			if r.status != 400 || errBody == nil || errBody["field"] != c.field || !strings.Contains(errBody["message"].(string), c.message) {
				t.Errorf("POST = %d %s, want a 400 on %s saying %q", r.status, r.raw, c.field, c.message)
			}
		})
	}
	id := e.place(t)
	r := e.do("POST", "/v1/orders/"+id+"/cancel", nil, `{"reason":"oops\u0000"}`)
	if errBody, _ := r.body["error"].(map[string]any); r.status != 400 || errBody["field"] != "reason" {
		t.Errorf("cancel with NUL in the reason = %d %s, want a 400 on reason", r.status, r.raw)
	}
	if n := e.countEvents(t); n != 1 {
		t.Errorf("the store holds %d events, want only the one valid order's", n)
	}
}

func TestUnknownOrderIs404AndMalformedIdIs400(t *testing.T) {
	e := newEnv(t)
	for path, want := range map[string]int{
		"/v1/orders/0196b4a4-7f5e-7c4e-9a1e-2f1d3c4b5a69":        http.StatusNotFound,
		"/v1/orders/not-a-uuid":                                  http.StatusBadRequest,
		"/v1/orders/0196b4a4-7f5e-7c4e-9a1e-2f1d3c4b5a69/events": http.StatusNotFound,
	} {
		if r := e.do("GET", path, nil, ""); r.status != want {
			t.Errorf("GET %s = %d, want %d", path, r.status, want)
		}
	}
	if r := e.do("POST", "/v1/orders/0196b4a4-7f5e-7c4e-9a1e-2f1d3c4b5a69/cancel", nil, ""); r.status != http.StatusNotFound {
		t.Errorf("cancel of an unknown order = %d, want 404", r.status)
	}
}

func TestCancelAndItsConflicts(t *testing.T) {
	e := newEnv(t)
	id := e.place(t)

	if r := e.do("POST", "/v1/orders/"+id+"/cancel", map[string]string{"If-Match": `"7"`}, ""); r.status != http.StatusPreconditionFailed {
		t.Errorf("cancel with a stale If-Match = %d %s, want 412", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/orders/"+id+"/cancel", map[string]string{"If-Match": `soon`}, ""); r.status != http.StatusBadRequest {
		t.Errorf("cancel with a malformed If-Match = %d, want 400", r.status)
	}
	r := e.do("POST", "/v1/orders/"+id+"/cancel", map[string]string{"If-Match": `"1"`}, `{"reason":"wrong size"}`)
	if r.status != 200 || r.body["status"] != "cancelled" || r.header.Get("ETag") != `"2"` {
		t.Fatalf("cancel = %d %s ETag %s, want 200 cancelled at version 2", r.status, r.raw, r.header.Get("ETag"))
	}
	again := e.do("POST", "/v1/orders/"+id+"/cancel", nil, "")
	if again.status != http.StatusConflict || !strings.Contains(string(again.raw), "already cancelled") {
		t.Errorf("cancelling a cancelled order = %d %s, want 409 saying why", again.status, again.raw)
	}
	if n := e.countEvents(t); n != 2 {
		t.Errorf("%d events after place, cancel and three refused commands; want 2", n)
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	key := map[string]string{"Idempotency-Key": "checkout-7f3a"}
	first := e.do("POST", "/v1/orders", key, validOrder)
	second := e.do("POST", "/v1/orders", key, validOrder)
	if first.status != 201 || second.status != 201 || first.body["order_id"] != second.body["order_id"] {
		t.Fatalf("same key and body: %d %s then %d %s; want the same order twice", first.status, first.raw, second.status, second.raw)
	}
	if second.header.Get("Idempotent-Replayed") != "true" {
		t.Error("the replayed response does not say so")
	}
	other := e.do("POST", "/v1/orders", key, strings.Replace(validOrder, "c-42", "c-43", 1))
	if other.status != http.StatusUnprocessableEntity {
		t.Errorf("same key, different body = %d %s, want 422", other.status, other.raw)
	}
	if n := e.countEvents(t); n != 1 {
		t.Errorf("%d events, want 1", n)
	}

	// Concurrent requests with one key still create one order.
	var wg sync.WaitGroup
	ids := make([]any, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.try("POST", "/v1/orders", map[string]string{"Idempotency-Key": "race"}, validOrder)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = r.body["order_id"]
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id == nil || id != ids[0] {
			t.Fatalf("concurrent requests with one key got orders %v", ids)
		}
	}
	if n := e.countEvents(t); n != 2 {
		t.Errorf("%d events after the concurrent requests, want 2", n)
	}
}

// Many clients cancel the same order at once, each with the ETag it read:
// exactly one wins, the others get 412, and the stream stays consistent.
func TestConcurrentCommandsOnOneOrder(t *testing.T) {
	e := newEnv(t)
	id := e.place(t)
	const clients = 16
	statuses := make(chan int, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.try("POST", "/v1/orders/"+id+"/cancel", map[string]string{"If-Match": `"1"`}, "")
			if err != nil {
				t.Error(err)
				return
			}
			statuses <- r.status
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[200] != 1 || count[412]+count[409] != clients-1 {
		t.Errorf("outcomes %v; want one 200 and the rest 412 or 409", count)
	}
	events, err := eventstore.Load(context.Background(), e.pool, adapters.StreamID(id))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Errorf("stream has %d events, want OrderPlaced and one OrderCancelled", len(events))
	}
	for i, ev := range events {
		if ev.StreamVersion != int64(i+1) {
			t.Errorf("event %d has version %d", i, ev.StreamVersion)
		}
	}
}

// Payment outcomes move the order along, a redelivered outcome changes
// nothing, and a payment that arrives after a cancellation is refunded.
func TestPaymentOutcomes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	paid, declined, late := e.place(t), e.place(t), e.place(t)

	for range 2 { // the second time is a redelivery
		if err := e.app.RecordPaymentSucceeded(ctx, paid, "ch-1", 2800); err != nil {
			t.Fatal(err)
		}
		if err := e.app.RecordPaymentDeclined(ctx, declined, "insufficient funds"); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.do("POST", "/v1/orders/"+late+"/cancel", nil, ""); r.status != 200 {
		t.Fatal(r.status)
	}
	if err := e.app.RecordPaymentSucceeded(ctx, late, "ch-2", 2800); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{paid: "paid", declined: "payment_failed", late: "refund_requested"} {
		if got := e.do("GET", "/v1/orders/"+id, nil, "").body["status"]; got != want {
			t.Errorf("order status %v, want %s", got, want)
		}
	}
	if err := e.app.RecordRefund(ctx, paid, "rf-1", 2800); err == nil {
		t.Error("a refund nobody asked for was accepted")
	}
	for range 2 {
		if err := e.app.RecordRefund(ctx, late, "rf-2", 2800); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.do("GET", "/v1/orders/"+late, nil, ""); got.body["status"] != "refunded" || got.header.Get("ETag") != `"5"` {
		t.Errorf("late-paid order: %s ETag %s; want refunded at version 5 (placed, cancelled, paid, refund requested, refunded)",
			got.raw, got.header.Get("ETag"))
	}
	if n := e.countEvents(t); n != 2+2+5 {
		t.Errorf("%d events, want %d", n, 2+2+5)
	}
}

// The order API serves the shared poison-queue admin endpoints (tested whole
// in shared/poison/poisonhttp), closed until ORDER_ADMIN_TOKEN is set.
func TestAdminEndpointsNeedTheOrderToken(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/admin/poison", map[string]string{"Authorization": "Bearer x"}, "")
	errBody, _ := r.body["error"].(map[string]any)
	if r.status != http.StatusServiceUnavailable || errBody["code"] != "admin_disabled" || !strings.Contains(errBody["message"].(string), "ORDER_ADMIN_TOKEN") {
		t.Errorf("GET /v1/admin/poison = %d %s, want 503 naming ORDER_ADMIN_TOKEN", r.status, r.raw)
	}
}
