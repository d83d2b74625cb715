package ports

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/app"
	"github.com/es-outbox/reference/order/domain/order"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/tracing"
)

// orderForm is the place-order form: one line item, enough to watch an
// order go through.
type orderForm struct {
	CustomerID, Currency, SKU, Quantity, UnitPrice string
}

var defaultOrderForm = orderForm{CustomerID: "console", Currency: "EUR", SKU: "book", Quantity: "1", UnitPrice: "1999"}

type ordersData struct {
	Orders   []app.OrderSummary
	Status   string
	Customer string
	Statuses []order.Status
	// Next is the address of the next page; empty on the last.
	Next string
	// FirstPage says whether this is the first page.
	FirstPage bool
	Form      orderForm
	FormError *httpserver.Error
}

func (c *Console) orders(w http.ResponseWriter, r *http.Request) {
	c.renderOrders(w, r, http.StatusOK, defaultOrderForm, nil)
}

// renderOrders shows the order list filtered by the query, with the
// place-order form (filled with form, and formErr above it).
func (c *Console) renderOrders(w http.ResponseWriter, r *http.Request, status int, form orderForm, formErr *httpserver.Error) {
	values := r.URL.Query()
	// The filter form sends empty fields; the API takes them as absent.
	for name, v := range values {
		if len(v) == 1 && v[0] == "" {
			values.Del(name)
		}
	}
	d := ordersData{Status: values.Get("status"), Customer: values.Get("customer_id"), Statuses: order.Statuses,
		FirstPage: !values.Has("cursor"), Form: form, FormError: formErr}
	p := c.newPage(r, "Orders", "orders", &d)
	q, err := listOrdersQuery(values.Encode())
	var page app.OrderPage
	if err == nil {
		page, err = c.cfg.App.ListOrders(r.Context(), q)
	}
	if err != nil {
		apiErr := c.publicError(r, err)
		p.Error, status = apiErr, apiErr.Status
	}
	d.Orders = page.Orders
	if page.Next != nil {
		next := url.Values{}
		for _, k := range []string{"customer_id", "status", "limit"} {
			if values.Has(k) {
				next.Set(k, values.Get(k))
			}
		}
		next.Set("cursor", encodeCursor(*page.Next))
		d.Next = ConsolePath + "orders?" + next.Encode()
	}
	c.render(w, r, status, "orders", p)
}

// placeOrder places the form's order and shows it, or shows the form again
// with what is wrong (400).
func (c *Console) placeOrder(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, httpserver.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, httpserver.BadField("(form)", "The form could not be read: "+err.Error()))
		return
	}
	form := orderForm{
		CustomerID: strings.TrimSpace(r.PostForm.Get("customer_id")), Currency: strings.TrimSpace(r.PostForm.Get("currency")),
		SKU: strings.TrimSpace(r.PostForm.Get("sku")), Quantity: strings.TrimSpace(r.PostForm.Get("quantity")),
		UnitPrice: strings.TrimSpace(r.PostForm.Get("unit_price")),
	}
	cmd := order.PlaceOrder{CustomerID: form.CustomerID, Currency: form.Currency}
	quantity, qerr := strconv.ParseInt(form.Quantity, 10, 64)
	price, perr := strconv.ParseInt(form.UnitPrice, 10, 64)
	var err error
	switch {
	case qerr != nil:
		err = httpserver.BadField("items[0].quantity", "must be a whole number")
	case perr != nil:
		err = httpserver.BadField("items[0].unit_price", "must be a whole number of minor units (cents)")
	default:
		cmd.Items = []order.LineItem{{SKU: form.SKU, Quantity: quantity, UnitPrice: price}}
		var id string
		id, _, err = c.cfg.App.PlaceOrder(r.Context(), cmd, "")
		if err == nil {
			http.Redirect(w, r, ConsolePath+"orders/"+id, http.StatusSeeOther)
			return
		}
	}
	apiErr := c.publicError(r, err)
	r.URL.RawQuery = ""
	c.renderOrders(w, r, apiErr.Status, form, apiErr)
}

// consoleEvent is an event of a stream as the order page shows it.
type consoleEvent struct {
	Type          string
	SchemaVersion int
	StreamVersion int64
	RecordedAt    time.Time
	CorrelationID string
	TraceID       string
	TraceURL      string
	Topic         string
	// Kafka is where the event's record is, if it was found.
	Kafka   *adapters.Position
	Payload string
}

// paymentView is the order's payment, from the payment service's API.
type paymentView struct {
	Status        string `json:"status"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	ChargeID      string `json:"charge_id"`
	DeclineReason string `json:"decline_reason"`
	RefundID      string `json:"refund_id"`
	History       []struct {
		Type string    `json:"type"`
		At   time.Time `json:"at"`
		// Kafka is where its record is on payment.events, if found.
		Kafka *adapters.Position `json:"-"`
	} `json:"history"`
	// KafkaErr says why where the events went is not known.
	KafkaErr string `json:"-"`
}

type orderData struct {
	Order  *order.Order
	Events []consoleEvent
	// KafkaErr says why where the events went is not known.
	KafkaErr   string
	Payment    *paymentView
	PaymentErr string
	// PaymentTopic is where the payment's events are.
	PaymentTopic string
	// Live says the order may still change, so the page refreshes.
	Live bool
}

func (c *Console) order(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		c.fail(w, r, httpserver.BadField("id", "This is not an order id (a UUID)."))
		return
	}
	o, err := c.cfg.App.Order(r.Context(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	events, err := c.cfg.App.OrderEvents(r.Context(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := &orderData{Order: o, PaymentTopic: contracts.PaymentEventsTopic, Live: o.Status() == order.StatusPlaced || o.Status() == order.StatusRefundRequested}
	var positions map[string]adapters.Position
	if len(events) > 0 {
		var recs []adapters.Record
		recs, err = c.cfg.Pipeline.Records(r.Context(), contracts.OrderEventsTopic, adapters.StreamID(id), events[0].RecordedAt, len(events))
		if err != nil {
			d.KafkaErr = err.Error()
		}
		positions = map[string]adapters.Position{}
		for _, rec := range recs {
			positions[rec.MessageID] = rec.Position
		}
	}
	for _, e := range events {
		ce := consoleEvent{Type: e.Type, SchemaVersion: e.SchemaVersion, StreamVersion: e.StreamVersion, RecordedAt: e.RecordedAt,
			CorrelationID: e.CorrelationID, Payload: indentJSON(e.Payload)}
		if topic, ok := routeTopic(e.Type); ok {
			ce.Topic = topic
			if pos, ok := positions[e.ID]; ok {
				ce.Kafka = &pos
			}
		}
		ce.TraceID = traceID(e.Metadata[contracts.TraceParentKey])
		if ce.TraceID != "" && c.cfg.JaegerURL != "" {
			ce.TraceURL = strings.TrimRight(c.cfg.JaegerURL, "/") + "/trace/" + ce.TraceID
		}
		d.Events = append(d.Events, ce)
	}
	d.Payment, d.PaymentErr = c.payment(r.Context(), id)
	if d.Payment != nil && len(d.Payment.History) > 0 {
		c.placePayment(r.Context(), id, d.Payment)
	}
	p := c.newPage(r, "Order "+id, "orders", d)
	if d.Live || d.unsent(c.cfg.Now()) {
		c.refreshing(p)
	}
	c.render(w, r, http.StatusOK, "order", p)
}

// unsentFor is how long after an order's last event the order page keeps
// refreshing to show where its events went in Kafka, while some are not
// found there: the forwarder sends them within moments, so one not found
// after that is beyond the search's limits, and looking again costs a read.
const unsentFor = 5 * time.Minute

// unsent says whether some of the order's or its payment's events are
// still to show up in Kafka, shortly after they were recorded.
func (d *orderData) unsent(now time.Time) bool {
	if d.KafkaErr != "" || len(d.Events) == 0 || now.Sub(d.Events[len(d.Events)-1].RecordedAt) > unsentFor {
		return false
	}
	for _, e := range d.Events {
		if e.Topic != "" && e.Kafka == nil {
			return true
		}
	}
	if p := d.Payment; p != nil && p.KafkaErr == "" {
		for _, h := range p.History {
			if h.Kafka == nil {
				return true
			}
		}
	}
	return false
}

// payment asks the payment service for the order's payment.
func (c *Console) payment(ctx context.Context, orderID string) (*paymentView, string) {
	s, ok := c.service(c.cfg.Payments)
	if !ok {
		return nil, "no payment service is configured"
	}
	var p paymentView
	status, err := callJSON(ctx, s, http.MethodGet, "/v1/payments/"+orderID, "", nil, &p)
	switch {
	case status == http.StatusNotFound:
		return nil, "no payment yet"
	case err != nil:
		return nil, err.Error()
	}
	return &p, ""
}

// placePayment finds the records of the payment's events on
// payment.events (their key is the payment's, by the contract), each
// history entry the first record of its type not taken by an earlier one.
func (c *Console) placePayment(ctx context.Context, orderID string, p *paymentView) {
	recs, err := c.cfg.Pipeline.Records(ctx, contracts.PaymentEventsTopic, contracts.PaymentKey(orderID), p.History[0].At, len(p.History))
	if err != nil {
		p.KafkaErr = err.Error()
		return
	}
	taken := make([]bool, len(recs))
	for i := range p.History {
		for j, rec := range recs {
			if !taken[j] && rec.EventType == p.History[i].Type {
				taken[j], p.History[i].Kafka = true, &rec.Position
				break
			}
		}
	}
}

// routeTopic is the topic the forwarder sends events of this type to.
func routeTopic(eventType string) (string, bool) {
	if strings.HasPrefix(eventType, "order.") {
		return contracts.OrderEventsTopic, true
	}
	return "", false
}

// traceID is the trace id of a W3C traceparent, or "".
func traceID(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 || len(parts[1]) != 32 || strings.Trim(parts[1], "0") == "" {
		return ""
	}
	return parts[1]
}

// indentJSON shows a payload indented if it is JSON, as it is if not.
func indentJSON(payload []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, payload, "", "  "); err != nil {
		return string(payload)
	}
	return buf.String()
}

// callJSON sends a request to s's API with an optional JSON body and bearer
// token, and decodes a 2xx answer into out. Another answer is an error
// carrying the API's message; its status is returned either way (0 if the
// service did not answer).
func callJSON(ctx context.Context, s ServiceAPI, method, path, token string, body, out any) (int, error) {
	var reader *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		reader = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var req *http.Request
	var err error
	if reader != nil {
		req, err = http.NewRequestWithContext(ctx, method, s.BaseURL+path, reader)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, s.BaseURL+path, nil)
	}
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if cid := tracing.CorrelationID(ctx); cid != "" {
		req.Header.Set(httpserver.CorrelationIDHeader, cid)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("the %s service does not answer: %w", s.Name, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error httpserver.Error `json:"error"`
		}
		apiErr := &httpserver.Error{Status: resp.StatusCode, Code: "upstream", Message: fmt.Sprintf("the %s service answered %s", s.Name, resp.Status)}
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error.Message != "" {
			apiErr.Code, apiErr.Field = e.Error.Code, e.Error.Field
			apiErr.Message = fmt.Sprintf("the %s service answered %d: %s", s.Name, resp.StatusCode, e.Error.Message)
		}
		if resp.StatusCode >= 500 {
			// Its failure, not the console user's: a bad gateway here.
			apiErr.Status = http.StatusBadGateway
		}
		return resp.StatusCode, apiErr
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("the %s service's answer: %w", s.Name, err)
	}
	return resp.StatusCode, nil
}
