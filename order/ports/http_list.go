package ports

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/httpserver"
)

type orderSummaryJSON struct {
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Status     string    `json:"status"`
	Currency   string    `json:"currency"`
	Total      int64     `json:"total"`
	ItemCount  int64     `json:"item_count"`
	PlacedAt   time.Time `json:"placed_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	Version    int64     `json:"version"`
}

type listOrdersResponse struct {
	Orders     []orderSummaryJSON `json:"orders"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

// listOrders serves GET /v1/orders?customer_id=&status=&limit=&cursor=: a
// page of orders, newest first, from the order_summaries read model, which
// follows the event store by about a poll interval.
func (s HTTPServer) listOrders(w http.ResponseWriter, r *http.Request) {
	q, err := listOrdersQuery(r.URL.RawQuery)
	if err != nil {
		httpserver.WriteError(w, r, err)
		return
	}
	page, err := s.app.ListOrders(r.Context(), q)
	if err != nil {
		httpserver.WriteError(w, r, apiError(err))
		return
	}
	resp := listOrdersResponse{Orders: make([]orderSummaryJSON, len(page.Orders))}
	for i, o := range page.Orders {
		resp.Orders[i] = orderSummaryJSON{
			OrderID: o.OrderID, CustomerID: o.CustomerID, Status: string(o.Status), Currency: o.Currency, Total: o.Total,
			ItemCount: o.ItemCount, PlacedAt: o.PlacedAt, UpdatedAt: o.UpdatedAt, Version: o.Version,
		}
	}
	if page.Next != nil {
		resp.NextCursor = encodeCursor(*page.Next)
	}
	httpserver.WriteJSON(w, http.StatusOK, resp)
}

var listOrdersParameters = []string{"customer_id", "status", "limit", "cursor"}

func listOrdersQuery(rawQuery string) (app.ListOrders, error) {
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return app.ListOrders{}, httpserver.BadField("(query)", "is not a valid query string: "+err.Error())
	}
	for name := range values {
		if !slices.Contains(listOrdersParameters, name) {
			return app.ListOrders{}, httpserver.BadField(name, "is not a query parameter of this endpoint (customer_id, status, limit, cursor)")
		}
	}
	if values.Has("status") && values.Get("status") == "" {
		// The application reads no status as every status; here it is a
		// value the API does not allow (leave the parameter out instead).
		return app.ListOrders{}, httpserver.BadField("status", "must be one of the order statuses; leave it out to list every status")
	}
	q := app.ListOrders{
		OrderFilter: app.OrderFilter{CustomerID: values.Get("customer_id"), Status: order.Status(values.Get("status"))},
		Limit:       app.DefaultPageSize,
	}
	if values.Has("limit") {
		limit, err := strconv.Atoi(values.Get("limit"))
		if err != nil {
			return q, httpserver.BadField("limit", fmt.Sprintf("must be a whole number from 1 to %d", app.MaxPageSize))
		}
		q.Limit = limit
	}
	if values.Has("cursor") {
		after, err := decodeCursor(values.Get("cursor"))
		if err != nil {
			return q, httpserver.BadField("cursor", "is not a next_cursor returned by this endpoint")
		}
		q.After = &after
	}
	return q, nil
}

// cursorJSON is a page's end as clients see it: opaque, base64url-encoded
// JSON, so its shape can change without breaking them.
type cursorJSON struct {
	PlacedAt time.Time `json:"placed_at"`
	OrderID  string    `json:"order_id"`
}

func encodeCursor(c app.OrderCursor) string {
	b, _ := json.Marshal(cursorJSON(c))
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (app.OrderCursor, error) {
	var c cursorJSON
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err == nil && (c.PlacedAt.IsZero() || c.OrderID == "") {
		err = fmt.Errorf("cursor %q lacks placed_at or order_id", b)
	}
	return app.OrderCursor(c), err
}
