package ports_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/es-outbox/reference/payment/adapters"
	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/payment/domain/poison"
	"github.com/es-outbox/reference/payment/ports"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/httpapi"
	"github.com/es-outbox/reference/shared/testenv"
)

const token = "s3cret-admin-token"

// api serves the payment HTTP API with adminToken over a fresh poison store
// holding entry "0-3", requeueing to a fresh broker.
type api struct {
	t       *testing.T
	url     string
	brokers []string
	store   *adapters.PoisonStore
}

func newAPI(t *testing.T, adminToken string) *api {
	t.Helper()
	pool, _ := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	brokers := testenv.Kafka(t)
	store := adapters.NewPoisonStore(pool)
	publisher := adapters.NewRequeuePublisher(brokers)
	t.Cleanup(func() { _ = publisher.Close() })
	_, err := store.Add(context.Background(), poison.Entry{
		ID: "0-3", Record: poison.Position{Topic: "payment.poison", Partition: 0, Offset: 3},
		PoisonedAt: time.Now(), Reason: "order.OrderPlaced payload is not valid",
		Origin: poison.Position{Topic: "order.events", Partition: 2, Offset: 7}, Key: "order-broken",
		Handler: "charge_order", EventType: "order.OrderPlaced", MessageID: "event-1",
		Metadata: map[string]string{"event_id": "event-1", "reason_poisoned": "order.OrderPlaced payload is not valid"},
		Payload:  []byte(`{"order_id": "bro`), Status: poison.StatusNew,
	})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	queue := app.NewPoisonQueue(store, publisher, logger)
	payments := app.New(adapters.NewPaymentRepository(pool), adapters.NewSimulatedGateway(pool, adapters.GatewayConfig{}), payment.Policy{}, logger)
	reg := httpapi.NewRegistry()
	ports.RegisterMetrics(reg, payments, queue, &consumer.Stats{})
	srv := httptest.NewServer(ports.NewHTTPHandler(payments, queue, adminToken, httpapi.Ops{Registry: reg}))
	t.Cleanup(srv.Close)
	return &api{t: t, url: srv.URL, brokers: brokers, store: store}
}

// do sends a request with the Authorization header auth (none if empty) and
// decodes the JSON answer into out, if given; it returns the status.
func (a *api) do(method, path, auth, body string, out any) int {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			a.t.Fatalf("%s %s: answer is not JSON: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

func TestAdminEndpointsAreDisabledWithoutAConfiguredToken(t *testing.T) {
	a := newAPI(t, "")
	for _, auth := range []string{"", "Bearer ", "Bearer anything"} {
		var e apiError
		if status := a.do(http.MethodGet, "/v1/admin/poison", auth, "", &e); status != http.StatusServiceUnavailable ||
			e.Error.Code != "admin_disabled" || !strings.Contains(e.Error.Message, "PAYMENT_ADMIN_TOKEN") {
			t.Errorf("GET /v1/admin/poison (Authorization %q) = %d %+v; want 503 naming PAYMENT_ADMIN_TOKEN", auth, status, e)
		}
	}
	if status := a.do(http.MethodGet, "/livez", "", "", nil); status != http.StatusOK {
		t.Errorf("GET /livez = %d, want 200", status)
	}
}

func TestAdminEndpointsRefuseAMissingOrWrongToken(t *testing.T) {
	a := newAPI(t, token)
	requests := []struct{ method, path, body string }{
		{http.MethodGet, "/v1/admin/poison", ""},
		{http.MethodGet, "/v1/admin/poison/0-3", ""},
		{http.MethodPost, "/v1/admin/poison/0-3/requeue", ""},
		{http.MethodPost, "/v1/admin/poison/requeue-all", ""},
		{http.MethodPost, "/v1/admin/poison/0-3/discard", `{"reason": "no"}`},
	}
	for _, r := range requests {
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + token + "x", "Basic " + token, token} {
			var e apiError
			if status := a.do(r.method, r.path, auth, r.body, &e); status != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
				t.Errorf("%s %s (Authorization %q) = %d %+v; want 401", r.method, r.path, auth, status, e)
			}
		}
	}
	var entry ports.PoisonEntryJSON
	a.do(http.MethodGet, "/v1/admin/poison/0-3", "Bearer "+token, "", &entry)
	if entry.Status != "new" {
		t.Errorf("after refused requests the entry is %q, want new", entry.Status)
	}
	if n := testenv.RecordCount(t, a.brokers, "order.events"); n != 0 {
		t.Errorf("refused requests published %d records", n)
	}
}

func TestAdminListShowAndDiscard(t *testing.T) {
	a := newAPI(t, token)
	auth := "Bearer " + token

	var list struct {
		Entries []ports.PoisonEntryJSON `json:"entries"`
	}
	if status := a.do(http.MethodGet, "/v1/admin/poison", auth, "", &list); status != http.StatusOK || len(list.Entries) != 1 {
		t.Fatalf("GET /v1/admin/poison = %d with %d entries, want 200 with 1", status, len(list.Entries))
	}
	got := list.Entries[0]
	if got.ID != "0-3" || got.Origin.Topic != "order.events" || *got.Origin.Offset != 7 || got.Key != "order-broken" ||
		got.Handler != "charge_order" || got.Payload != `{"order_id": "bro` || got.Status != "new" {
		t.Errorf("listed entry = %+v", got)
	}

	var entry ports.PoisonEntryJSON
	if status := a.do(http.MethodGet, "/v1/admin/poison/0-3", auth, "", &entry); status != http.StatusOK ||
		entry.Metadata["event_id"] != "event-1" || entry.PoisonRecord.Topic != "payment.poison" {
		t.Errorf("GET /v1/admin/poison/0-3 = %d %+v", status, entry)
	}
	var e apiError
	if status := a.do(http.MethodGet, "/v1/admin/poison/9-9", auth, "", &e); status != http.StatusNotFound || e.Error.Code != "not_found" {
		t.Errorf("GET of an unknown id = %d %+v, want 404", status, e)
	}
	e = apiError{}
	if status := a.do(http.MethodGet, "/v1/admin/poison?status=lost", auth, "", &e); status != http.StatusBadRequest || e.Error.Field != "status" {
		t.Errorf("GET ?status=lost = %d %+v, want 400 naming status", status, e)
	}
	e = apiError{}
	if status := a.do(http.MethodPost, "/v1/admin/poison/0-3/discard", auth, `{"by": "ann"}`, &e); status != http.StatusBadRequest || e.Error.Field != "reason" {
		t.Errorf("discard without a reason = %d %+v, want 400 naming reason", status, e)
	}

	var outcome ports.OutcomeJSON
	status := a.do(http.MethodPost, "/v1/admin/poison/0-3/discard", auth, `{"reason": "a test order", "by": "ann"}`, &outcome)
	if status != http.StatusOK || outcome.Result != "discarded" || outcome.Entry.ChangedBy != "ann" || outcome.Entry.ChangeReason != "a test order" {
		t.Errorf("discard = %d %+v", status, outcome)
	}
	status = a.do(http.MethodPost, "/v1/admin/poison/0-3/discard", auth, `{"reason": "again"}`, &outcome)
	if status != http.StatusOK || outcome.Result != "unchanged" || outcome.Entry.ChangeReason != "a test order" {
		t.Errorf("second discard = %d %+v, want unchanged", status, outcome)
	}
	a.do(http.MethodGet, "/v1/admin/poison", auth, "", &list)
	if len(list.Entries) != 0 {
		t.Errorf("new entries after the discard: %+v", list.Entries)
	}
	a.do(http.MethodGet, "/v1/admin/poison?status=discarded", auth, "", &list)
	if len(list.Entries) != 1 {
		t.Errorf("discarded entries: %d, want 1", len(list.Entries))
	}
	if n := testenv.RecordCount(t, a.brokers, "order.events"); n != 0 {
		t.Errorf("a discard published %d records", n)
	}
}

func TestAdminRequeue(t *testing.T) {
	a := newAPI(t, token)
	auth := "Bearer " + token
	var outcome ports.OutcomeJSON
	if status := a.do(http.MethodPost, "/v1/admin/poison/0-3/requeue", auth, `{"dry_run": true}`, &outcome); status != http.StatusOK || outcome.Result != "would_requeue" {
		t.Errorf("dry run = %d %+v, want would_requeue", status, outcome)
	}
	status := a.do(http.MethodPost, "/v1/admin/poison/0-3/requeue", auth, "", &outcome)
	if status != http.StatusOK || outcome.Result != "requeued" || outcome.Entry.RequeuedTo == nil || outcome.Entry.RequeuedTo.Topic != "order.events" {
		t.Errorf("requeue = %d %+v, want requeued to order.events", status, outcome)
	}
	var all struct {
		Outcomes []ports.OutcomeJSON `json:"outcomes"`
	}
	if status := a.do(http.MethodPost, "/v1/admin/poison/requeue-all", auth, `{"by": "ann"}`, &all); status != http.StatusOK || len(all.Outcomes) != 0 {
		t.Errorf("requeue-all after the requeue = %d %+v, want nothing to do", status, all)
	}
	if n := testenv.RecordCount(t, a.brokers, "order.events"); n != 1 {
		t.Errorf("order.events holds %d records, want 1", n)
	}
}

// An entry that does not say where it came from cannot be requeued: 409,
// and it stays new, with nothing published.
func TestAdminRequeueWithoutOriginIsAConflict(t *testing.T) {
	a := newAPI(t, token)
	_, err := a.store.Add(context.Background(), poison.Entry{
		ID: "0-4", Record: poison.Position{Topic: "payment.poison", Partition: 0, Offset: 4},
		PoisonedAt: time.Now(), Reason: "no origin", Payload: []byte(`{}`), Status: poison.StatusNew,
	})
	if err != nil {
		t.Fatal(err)
	}
	var e apiError
	if status := a.do(http.MethodPost, "/v1/admin/poison/0-4/requeue", "Bearer "+token, "", &e); status != http.StatusConflict || e.Error.Code != "not_requeueable" {
		t.Errorf("requeue without origin = %d %+v, want 409 not_requeueable", status, e)
	}
	if entry, err := a.store.Get(context.Background(), "0-4"); err != nil || entry.Status != poison.StatusNew {
		t.Errorf("after the refused requeue the entry is %+v (%v), want it new", entry.Status, err)
	}
	if n := testenv.RecordCount(t, a.brokers, "order.events"); n != 0 {
		t.Errorf("order.events holds %d records, want none", n)
	}
}

func TestMetricsReportTheQueueDepth(t *testing.T) {
	a := newAPI(t, token)
	resp, err := http.Get(a.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"payment_poison_queue_depth 1\n", "payment_messages_handled_total 0\n", "# TYPE payment_message_retries_total counter\n", "payment_messages_poisoned_total 0\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /metrics lacks %q:\n%s", want, body)
		}
	}
}
