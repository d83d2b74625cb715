package ports_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/ports"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/testenv"
)

func newServer(t *testing.T) (*httptest.Server, *pgxpool.Pool) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	srv := httptest.NewServer(ports.NewHTTPHandler(app.New(adapters.NewOrderRepository(pool))))
	t.Cleanup(srv.Close)
	return srv, pool
}

func post(t *testing.T, url, contentType, body string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var decoded map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&decoded)
	return resp, decoded
}

func countEvents(t *testing.T, pool *pgxpool.Pool) int {
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

const validOrder = `{"customer_id":"c-42","currency":"EUR","items":[{"sku":"book","quantity":2,"unit_price":1250},{"sku":"pen","quantity":1,"unit_price":300}]}`

func TestPlaceOrderThenGetIt(t *testing.T) {
	srv, pool := newServer(t)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/orders", strings.NewReader(validOrder))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Correlation-ID", "req-123")
	req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/orders = %d %v, want 201", resp.StatusCode, created)
	}
	id := created["order_id"]
	if loc := resp.Header.Get("Location"); loc != "/v1/orders/"+id {
		t.Errorf("Location = %q, want /v1/orders/%s", loc, id)
	}

	got, err := http.Get(srv.URL + "/v1/orders/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	var o struct {
		OrderID  string `json:"order_id"`
		Status   string `json:"status"`
		Currency string `json:"currency"`
		Total    int64  `json:"total"`
		Version  int64  `json:"version"`
		Items    []struct {
			SKU string `json:"sku"`
		} `json:"items"`
	}
	_ = json.NewDecoder(got.Body).Decode(&o)
	if got.StatusCode != 200 || o.OrderID != id || o.Status != "placed" || o.Total != 2800 || o.Currency != "EUR" || len(o.Items) != 2 || o.Version != 1 {
		t.Errorf("GET = %d %+v; want the placed order with total 2800", got.StatusCode, o)
	}

	// The event carries the request's correlation id and trace.
	var corr, traceparent string
	_ = pool.QueryRow(context.Background(), `SELECT correlation_id, metadata->>'traceparent' FROM events WHERE stream_id = $1`, adapters.StreamID(id)).Scan(&corr, &traceparent)
	if corr != "req-123" || !strings.HasPrefix(traceparent, "00-0af7651916cd43dd8448eb211c80319c-") {
		t.Errorf("stored correlation id %q traceparent %q; want the request's", corr, traceparent)
	}
}

func TestBadInputIsRejectedAndWritesNothing(t *testing.T) {
	srv, pool := newServer(t)
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
			resp, body := post(t, srv.URL+"/v1/orders", c.contentType, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d %v, want %d", resp.StatusCode, body, c.status)
			}
			errBody, _ := body["error"].(map[string]any)
			if errBody == nil || errBody["message"] == "" {
				t.Fatalf("body %v has no error message", body)
			}
			if c.field != "" && errBody["field"] != c.field {
				t.Errorf("error names field %v, want %q (%v)", errBody["field"], c.field, errBody["message"])
			}
		})
	}
	if n := countEvents(t, pool); n != 0 {
		t.Errorf("bad requests wrote %d events, want 0", n)
	}
}

func TestUnknownOrderIs404AndMalformedIdIs400(t *testing.T) {
	srv, _ := newServer(t)
	for path, want := range map[string]int{
		"/v1/orders/0196b4a4-7f5e-7c4e-9a1e-2f1d3c4b5a69": http.StatusNotFound,
		"/v1/orders/not-a-uuid":                           http.StatusBadRequest,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
}
