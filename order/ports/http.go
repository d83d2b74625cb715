// Package ports exposes the order application over HTTP.
package ports

import (
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/httpapi"
)

// HTTPServer serves the order API.
type HTTPServer struct {
	app *app.Application
}

// NewHTTPHandler returns the routes of the order API.
func NewHTTPHandler(application *app.Application) http.Handler {
	s := HTTPServer{app: application}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders", s.placeOrder)
	mux.HandleFunc("GET /v1/orders", s.listOrders)
	mux.HandleFunc("GET /v1/orders/{id}", s.getOrder)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return httpapi.Middleware(mux)
}

type lineItemJSON struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

type placeOrderRequest struct {
	CustomerID string         `json:"customer_id"`
	Currency   string         `json:"currency"`
	Items      []lineItemJSON `json:"items"`
}

type orderResponse struct {
	OrderID    string         `json:"order_id"`
	CustomerID string         `json:"customer_id"`
	Status     string         `json:"status"`
	Currency   string         `json:"currency"`
	Total      int64          `json:"total"`
	Items      []lineItemJSON `json:"items"`
	PlacedAt   time.Time      `json:"placed_at"`
	Version    int64          `json:"version"`
}

func (s HTTPServer) placeOrder(w http.ResponseWriter, r *http.Request) {
	var req placeOrderRequest
	if err := httpapi.DecodeJSON(w, r, &req); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	cmd := order.PlaceOrder{CustomerID: req.CustomerID, Currency: req.Currency}
	for _, it := range req.Items {
		cmd.Items = append(cmd.Items, order.LineItem{SKU: it.SKU, Quantity: it.Quantity, UnitPrice: it.UnitPrice})
	}
	id, err := s.app.PlaceOrder(r.Context(), cmd)
	if err != nil {
		httpapi.WriteError(w, r, apiError(err))
		return
	}
	w.Header().Set("Location", "/v1/orders/"+id)
	httpapi.WriteJSON(w, http.StatusCreated, map[string]string{"order_id": id, "status": string(order.StatusPlaced)})
}

func (s HTTPServer) getOrder(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		httpapi.WriteError(w, r, httpapi.BadField("id", "is not a UUID"))
		return
	}
	o, err := s.app.Order(r.Context(), id)
	if err != nil {
		httpapi.WriteError(w, r, apiError(err))
		return
	}
	resp := orderResponse{
		OrderID: o.ID(), CustomerID: o.CustomerID(), Status: string(o.Status()), Currency: o.Currency(),
		Total: o.Total(), PlacedAt: o.PlacedAt(), Version: o.Version(),
	}
	for _, it := range o.Items() {
		resp.Items = append(resp.Items, lineItemJSON{SKU: it.SKU, Quantity: it.Quantity, UnitPrice: it.UnitPrice})
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// apiError maps domain errors to HTTP errors, in one place.
func apiError(err error) error {
	var invalid *order.ValidationError
	switch {
	case errors.As(err, &invalid):
		return httpapi.BadField(invalid.Field, invalid.Message)
	case errors.Is(err, order.ErrNotFound):
		return &httpapi.Error{Status: http.StatusNotFound, Code: "not_found", Message: "no order with this id"}
	}
	return err
}
