// Package ports exposes the order application: over HTTP (this file) and
// to Kafka (kafka.go).
package ports

import (
	_ "embed"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisonhttp"
)

// OpenAPI is the API's OpenAPI 3 document, served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// HTTPServer serves the order API.
type HTTPServer struct {
	app *app.Application
}

// NewHTTPHandler returns the routes of the order API, the poison-queue admin
// endpoints under /v1/admin/poison (the payment service's, on order.poison),
// which need "Authorization: Bearer <adminToken>" and are disabled while
// adminToken is empty (none while queue is nil), the operational endpoints (/livez, /readyz,
// /metrics), and those that more adds (the console's).
func NewHTTPHandler(application *app.Application, queue *poisonapp.Queue, adminToken string, ops httpserver.Ops, more ...func(*http.ServeMux)) http.Handler {
	s := HTTPServer{app: application}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/orders", s.placeOrder)
	mux.HandleFunc("GET /v1/orders", s.listOrders)
	mux.HandleFunc("GET /v1/orders/{id}", s.getOrder)
	mux.HandleFunc("POST /v1/orders/{id}/cancel", s.cancelOrder)
	mux.HandleFunc("GET /v1/orders/{id}/events", s.orderEvents)
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(OpenAPI)
	})
	if queue != nil {
		poisonhttp.Register(mux, queue, poisonhttp.Admin{Token: adminToken, TokenVariable: "ORDER_ADMIN_TOKEN", Realm: "order admin"})
	}
	for _, register := range more {
		register(mux)
	}
	return httpserver.Handler(mux, ops)
}

type placeOrderRequest struct {
	CustomerID string `json:"customer_id"`
	Currency   string `json:"currency"`
	// Items are in the API as in the OrderPlaced event (sku, quantity,
	// unit_price): the contract's line item, read and written as it is.
	Items []order.LineItem `json:"items"`
}

type orderResponse struct {
	OrderID    string           `json:"order_id"`
	CustomerID string           `json:"customer_id"`
	Status     string           `json:"status"`
	Currency   string           `json:"currency"`
	Total      int64            `json:"total"`
	Items      []order.LineItem `json:"items"`
	PlacedAt   time.Time        `json:"placed_at"`
	Version    int64            `json:"version"`
	// Reason says why the order reached its status, when someone said.
	Reason string `json:"reason,omitempty"`
}

var validIdempotencyKey = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

func (s HTTPServer) placeOrder(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if key != "" && !validIdempotencyKey.MatchString(key) {
		httpserver.WriteError(w, r, httpserver.BadField("Idempotency-Key", "must be 1 to 255 printable ASCII characters"))
		return
	}
	var req placeOrderRequest
	if err := httpserver.DecodeJSON(w, r, &req); err != nil {
		httpserver.WriteError(w, r, inMinorUnits(err))
		return
	}
	cmd := order.PlaceOrder{CustomerID: req.CustomerID, Currency: req.Currency, Items: req.Items}
	id, replayed, err := s.app.PlaceOrder(r.Context(), cmd, key)
	if err != nil {
		httpserver.WriteError(w, r, apiError(err))
		return
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/v1/orders/"+id)
	httpserver.WriteJSON(w, http.StatusCreated, map[string]string{"order_id": id, "status": string(order.StatusPlaced)})
}

// inMinorUnits names the unit of a price that was not a whole number (1e3,
// 9.99): prices are integers of minor units (cents), never decimals.
func inMinorUnits(err error) error {
	var e *httpserver.Error
	if errors.As(err, &e) && strings.HasSuffix(e.Field, "unit_price") {
		if rest, ok := strings.CutPrefix(e.Message, httpserver.WholeNumber); ok {
			e.Message = httpserver.WholeNumber + " of minor units" + rest
		}
	}
	return err
}

func (s HTTPServer) getOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := orderID(w, r)
	if !ok {
		return
	}
	o, err := s.app.Order(r.Context(), id)
	if err != nil {
		httpserver.WriteError(w, r, apiError(err))
		return
	}
	writeOrder(w, http.StatusOK, o)
}

type cancelRequest struct {
	Reason string `json:"reason"`
}

func (s HTTPServer) cancelOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := orderID(w, r)
	if !ok {
		return
	}
	version, err := ifMatch(r)
	if err != nil {
		httpserver.WriteError(w, r, err)
		return
	}
	var req cancelRequest
	if err := httpserver.DecodeOptionalJSON(w, r, &req); err != nil {
		httpserver.WriteError(w, r, err)
		return
	}
	if req.Reason == "" {
		req.Reason = "cancelled by the customer"
	}
	o, err := s.app.CancelOrder(r.Context(), id, version, req.Reason)
	if err != nil {
		httpserver.WriteError(w, r, apiError(err))
		return
	}
	writeOrder(w, http.StatusOK, o)
}

type eventJSON struct {
	EventID       string            `json:"event_id"`
	Type          string            `json:"type"`
	SchemaVersion int               `json:"schema_version"`
	StreamVersion int64             `json:"stream_version"`
	Payload       any               `json:"payload"`
	CorrelationID string            `json:"correlation_id"`
	Metadata      map[string]string `json:"metadata"`
	RecordedAt    time.Time         `json:"recorded_at"`
}

func (s HTTPServer) orderEvents(w http.ResponseWriter, r *http.Request) {
	id, ok := orderID(w, r)
	if !ok {
		return
	}
	events, err := s.app.OrderEvents(r.Context(), id)
	if err != nil {
		httpserver.WriteError(w, r, apiError(err))
		return
	}
	out := make([]eventJSON, len(events))
	for i, e := range events {
		out[i] = eventJSON{
			EventID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion, StreamVersion: e.StreamVersion,
			Payload: e.Payload, CorrelationID: e.CorrelationID, Metadata: e.Metadata, RecordedAt: e.RecordedAt,
		}
	}
	httpserver.WriteJSON(w, http.StatusOK, map[string]any{"order_id": id, "events": out})
}

func writeOrder(w http.ResponseWriter, status int, o *order.Order) {
	resp := orderResponse{
		OrderID: o.ID(), CustomerID: o.CustomerID(), Status: string(o.Status()), Currency: o.Currency(),
		Total: o.Total(), PlacedAt: o.PlacedAt(), Version: o.Version(), Reason: o.Reason(), Items: o.Items(),
	}
	w.Header().Set("ETag", etag(o.Version()))
	httpserver.WriteJSON(w, status, resp)
}

// etag is the order's stream version, which changes with every event.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch reads the version a command expects from If-Match, or AnyVersion.
func ifMatch(r *http.Request) (int64, error) {
	h := r.Header.Get("If-Match")
	if h == "" || h == "*" {
		return order.AnyVersion, nil
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || v < 1 {
		return 0, httpserver.BadField("If-Match", `must be an ETag of this order, such as "2"`)
	}
	return v, nil
}

func orderID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		httpserver.WriteError(w, r, httpserver.BadField("id", "is not a UUID"))
		return "", false
	}
	return id, true
}

// apiError maps domain and application errors to HTTP errors, in one place.
func apiError(err error) error {
	var (
		invalid    *order.ValidationError
		transition *order.TransitionError
	)
	switch {
	case errors.As(err, &invalid):
		return httpserver.BadField(invalid.Field, invalid.Message)
	case errors.As(err, &transition):
		return &httpserver.Error{Status: http.StatusConflict, Code: "invalid_transition", Message: transition.Message}
	case errors.Is(err, order.ErrNotFound):
		return &httpserver.Error{Status: http.StatusNotFound, Code: "not_found", Message: "no order with this id"}
	case errors.Is(err, order.ErrVersionMismatch):
		return &httpserver.Error{Status: http.StatusPreconditionFailed, Code: "version_mismatch",
			Message: "the order has changed since the version in If-Match; GET it again and retry"}
	case errors.Is(err, order.ErrConcurrentUpdate):
		return &httpserver.Error{Status: http.StatusConflict, Code: "conflict", Message: "the order is being changed concurrently; retry"}
	case errors.Is(err, eventstore.ErrUnknownEvent):
		// A newer version of the service wrote it: a replica that runs
		// that version can load the order; this one cannot, and changes
		// nothing.
		return &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "newer_version",
			Message: "the order holds an event written by a newer version of the service; retry later"}
	case errors.Is(err, app.ErrIdempotencyKeyReused):
		return &httpserver.Error{Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused",
			Message: "this Idempotency-Key was used for a different request"}
	}
	return err
}
