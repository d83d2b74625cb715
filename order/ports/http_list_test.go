package ports_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/ports"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/httpserver"
)

type listedOrder struct {
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Status     string    `json:"status"`
	Currency   string    `json:"currency"`
	Total      int64     `json:"total"`
	ItemCount  int64     `json:"item_count"`
	PlacedAt   time.Time `json:"placed_at"`
	Version    int64     `json:"version"`
}

type orderList struct {
	Orders     []listedOrder `json:"orders"`
	NextCursor string        `json:"next_cursor"`
}

// newListServer serves the API with the order list, its projector running.
func newListServer(t *testing.T) *httptest.Server {
	pool, _ := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	project(t, pool)
	application := app.New(adapters.NewOrderRepository(pool, nil)).WithOrderSummaries(projections.NewSummaryReader(pool))
	srv := httptest.NewServer(ports.NewHTTPHandler(application, nil, "", httpserver.Ops{}))
	t.Cleanup(srv.Close)
	return srv
}

// project keeps the read models in pool's database up to date until the test ends.
func project(t *testing.T, pool *pgxpool.Pool) {
	testenv.Go(t, "projector", func(ctx context.Context) error {
		s := projections.Settings{Enabled: true, PollInterval: 10 * time.Millisecond, BatchSize: 100}
		return projections.Run(ctx, pool, projections.All, s, slog.New(slog.DiscardHandler))
	})
}

// list gets a page of orders, checking the answer against openapi.yaml.
func list(t *testing.T, srv *httptest.Server, query string) (int, orderList, map[string]any) {
	t.Helper()
	r := newAPI(t, srv).do("GET", "/v1/orders?"+query, nil, "")
	var page orderList
	_ = json.Unmarshal(r.raw, &page)
	return r.status, page, r.body
}

func placeFor(t *testing.T, srv *httptest.Server, customer string) string {
	t.Helper()
	r := newAPI(t, srv).do("POST", "/v1/orders", nil,
		`{"customer_id":"`+customer+`","currency":"EUR","items":[{"sku":"book","quantity":2,"unit_price":1250}]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("place order: %d %s", r.status, r.raw)
	}
	return r.body["order_id"].(string)
}

func TestListOrdersPaginatesAndFilters(t *testing.T) {
	srv := newListServer(t)
	var ids []string
	for _, customer := range []string{"alice", "bob", "alice", "carol", "alice", "bob", "alice"} {
		ids = append(ids, placeFor(t, srv, customer))
	}
	testenv.Eventually(t, 30*time.Second, "all orders listed", func() bool {
		_, page, _ := list(t, srv, "limit=100")
		return len(page.Orders) == len(ids)
	})

	// Page through everything, three at a time: newest first, each order once.
	var listed []listedOrder
	query := "limit=3"
	for pages := 1; ; pages++ {
		status, page, body := list(t, srv, query)
		if status != http.StatusOK || len(page.Orders) > 3 {
			t.Fatalf("page %d: %d %v", pages, status, body)
		}
		listed = append(listed, page.Orders...)
		if page.NextCursor == "" {
			if pages != 3 {
				t.Errorf("%d pages of 3 for 7 orders, want 3", pages)
			}
			break
		}
		query = "limit=3&cursor=" + url.QueryEscape(page.NextCursor)
	}
	var listedIDs []string
	for _, o := range listed {
		listedIDs = append(listedIDs, o.OrderID)
	}
	newestFirst := slices.Clone(ids)
	slices.Reverse(newestFirst) // UUIDv7 ids placed one after another
	if strings.Join(listedIDs, " ") != strings.Join(newestFirst, " ") {
		t.Errorf("paged through %v, want newest first %v", listedIDs, newestFirst)
	}
	if o := listed[0]; o.Status != "placed" || o.Total != 2500 || o.ItemCount != 2 || o.Currency != "EUR" || o.Version != 1 || o.PlacedAt.IsZero() {
		t.Errorf("listed order %+v", o)
	}

	_, page, _ := list(t, srv, "customer_id=alice&limit=2")
	_, rest, _ := list(t, srv, "customer_id=alice&limit=2&cursor="+url.QueryEscape(page.NextCursor))
	alices := append(page.Orders, rest.Orders...)
	if len(alices) != 4 || rest.NextCursor != "" {
		t.Errorf("alice's orders: %+v then %+v, want 4 on two pages", page, rest)
	}
	for _, o := range alices {
		if o.CustomerID != "alice" {
			t.Errorf("customer_id=alice listed %+v", o)
		}
	}
	if _, none, body := list(t, srv, "status=paid"); len(none.Orders) != 0 || none.NextCursor != "" || body["orders"] == nil {
		t.Errorf("status=paid: %v, want an empty list", body)
	}
	if _, placed, _ := list(t, srv, "status=placed&customer_id=bob"); len(placed.Orders) != 2 {
		t.Errorf("bob's placed orders: %+v, want 2", placed.Orders)
	}
}

func TestListOrdersRejectsBadInputNamingTheField(t *testing.T) {
	srv := newListServer(t)
	cases := map[string]string{
		"status=shipped":  "status",
		"limit=0":         "limit",
		"limit=101":       "limit",
		"limit=ten":       "limit",
		"limit=":          "limit",
		"cursor=bm9wZQ":   "cursor",
		"cursor=%%%":      "(query)",
		"cursor=e30":      "cursor",
		"customer=alice":  "customer",
		"sort=placed_at":  "sort",
		"status=PLACED":   "status",
		"status=":         "status",
		"cursor=not+b64!": "cursor",
	}
	for query, field := range cases {
		status, _, body := list(t, srv, query)
		errBody, _ := body["error"].(map[string]any)
		if status != http.StatusBadRequest || errBody["field"] != field || errBody["message"] == "" {
			t.Errorf("?%s: %d %v, want 400 naming %s", query, status, body, field)
		}
	}
}
