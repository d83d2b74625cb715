package ports_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/ports"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/httpserver"
)

// FuzzPlaceOrder sends arbitrary bodies and content types to POST
// /v1/orders through the real handler on a real database. Whatever a client
// sends: no panic, no 5xx, and a 4xx stores nothing while a 201 stores
// exactly the one OrderPlaced.
func FuzzPlaceOrder(f *testing.F) {
	f.Add("application/json", validOrder)
	f.Add("application/json", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":9223372036854775807,"unit_price":9223372036854775807}]}`)
	f.Add("application/json", `{"customer_id":"c","currency":"eur","items":[]}`)
	f.Add("text/plain", `{"customer_id":"c"}`)
	f.Add("application/json", `{"customer_id":"c","currency":"EUR","items":[{"sku":"a\u0000","quantity":1,"unit_price":1e3}]}`)
	pool, _ := testenv.Database(f, eventstore.Migrations, adapters.Migrations)
	srv := httptest.NewServer(ports.NewHTTPHandler(app.New(adapters.NewOrderRepository(pool, nil)), nil, "", httpserver.Ops{}))
	f.Cleanup(srv.Close)
	events := func(t *testing.T) int {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		before := events(t)
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/orders", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil && strings.Contains(err.Error(), "invalid header field value") {
			t.Skip("Go's client refuses to send this Content-Type")
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		stored := events(t) - before
		switch {
		case resp.StatusCode >= 500:
			t.Fatalf("POST %q (%s) = %d", body, contentType, resp.StatusCode)
		case resp.StatusCode == http.StatusCreated && stored != 1:
			t.Fatalf("POST %q = 201 but stored %d events", body, stored)
		case resp.StatusCode >= 400 && stored != 0:
			t.Fatalf("POST %q = %d but stored %d events", body, resp.StatusCode, stored)
		}
	})
}
