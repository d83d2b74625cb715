package poisonhttp_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/devtools/poisontest"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/poison"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisonhttp"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
)

const token = "s3cret-admin-token"

// newAPI serves the admin endpoints with adminToken over a fresh poison
// store holding entry "0-3" (poisoned from order.events partition 2),
// requeueing to a fresh broker whose order.events has several partitions.
func newAPI(t *testing.T, adminToken string) *poisontest.API {
	t.Helper()
	pool, _ := testenv.Database(t, poisonstore.Migrations)
	return poisontest.NewAPI(t, pool, func(queue *poisonapp.Queue) http.Handler {
		reg := httpserver.NewRegistry()
		reg.MustRegister(poisonhttp.DepthCollector(queue, "test_poison_queue_depth"))
		mux := http.NewServeMux()
		poisonhttp.Register(mux, queue, poisonhttp.Admin{Token: adminToken, TokenVariable: "TEST_ADMIN_TOKEN", Realm: "test admin"})
		return httpserver.Handler(mux, httpserver.Ops{Registry: reg})
	})
}

type apiError = testenv.APIError

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
			if status := a.Do(r.method, r.path, auth, r.body, &e); status != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
				t.Errorf("%s %s (Authorization %q) = %d %+v; want 401", r.method, r.path, auth, status, e)
			}
		}
	}
	var entry poisonhttp.PoisonEntryJSON
	a.Do(http.MethodGet, "/v1/admin/poison/0-3", "Bearer "+token, "", &entry)
	if entry.Status != "new" {
		t.Errorf("after refused requests the entry is %q, want new", entry.Status)
	}
	if n := testenv.RecordCount(t, a.Brokers, "order.events"); n != 0 {
		t.Errorf("refused requests published %d records", n)
	}
}

func TestAdminListShowAndDiscard(t *testing.T) {
	a := newAPI(t, token)
	auth := "Bearer " + token

	var list struct {
		Entries []poisonhttp.PoisonEntryJSON `json:"entries"`
	}
	if status := a.Do(http.MethodGet, "/v1/admin/poison", auth, "", &list); status != http.StatusOK || len(list.Entries) != 1 {
		t.Fatalf("GET /v1/admin/poison = %d with %d entries, want 200 with 1", status, len(list.Entries))
	}
	got := list.Entries[0]
	if got.ID != "0-3" || got.Origin.Topic != "order.events" || *got.Origin.Offset != 7 || got.Key != "order-broken" ||
		got.Handler != "charge_order" || got.Payload != `{"order_id": "bro` || got.Status != "new" {
		t.Errorf("listed entry = %+v", got)
	}

	var entry poisonhttp.PoisonEntryJSON
	if status := a.Do(http.MethodGet, "/v1/admin/poison/0-3", auth, "", &entry); status != http.StatusOK ||
		entry.Metadata["event_id"] != "event-1" || entry.PoisonRecord.Topic != "payment.poison" {
		t.Errorf("GET /v1/admin/poison/0-3 = %d %+v", status, entry)
	}
	var e apiError
	if status := a.Do(http.MethodGet, "/v1/admin/poison/9-9", auth, "", &e); status != http.StatusNotFound || e.Error.Code != "not_found" {
		t.Errorf("GET of an unknown id = %d %+v, want 404", status, e)
	}
	e = apiError{}
	if status := a.Do(http.MethodGet, "/v1/admin/poison?status=lost", auth, "", &e); status != http.StatusBadRequest || e.Error.Field != "status" {
		t.Errorf("GET ?status=lost = %d %+v, want 400 naming status", status, e)
	}
	e = apiError{}
	if status := a.Do(http.MethodPost, "/v1/admin/poison/0-3/discard", auth, `{"by": "ann"}`, &e); status != http.StatusBadRequest || e.Error.Field != "reason" {
		t.Errorf("discard without a reason = %d %+v, want 400 naming reason", status, e)
	}

	for body, field := range map[string]string{
		`{"reason": "nul \u0000 in it"}`:                             "reason",
		`{"reason": "` + strings.Repeat("x", 501) + `"}`:             "reason",
		`{"reason": "ok", "by": "` + strings.Repeat("y", 101) + `"}`: "by",
	} {
		e = apiError{}
		if status := a.Do(http.MethodPost, "/v1/admin/poison/0-3/discard", auth, body, &e); status != http.StatusBadRequest || e.Error.Field != field {
			t.Errorf("discard with %.40s = %d %+v, want 400 naming %s", body, status, e, field)
		}
	}
	e = apiError{}
	if status := a.Do(http.MethodPost, "/v1/admin/poison/requeue-all", auth, `{"by": "tab\tin"}`, &e); status != http.StatusBadRequest || e.Error.Field != "by" {
		t.Errorf("requeue-all by a name with a tab = %d %+v, want 400 naming by", status, e)
	}

	var outcome poisonhttp.OutcomeJSON
	status := a.Do(http.MethodPost, "/v1/admin/poison/0-3/discard", auth, `{"reason": "a test order", "by": "ann"}`, &outcome)
	if status != http.StatusOK || outcome.Result != "discarded" || outcome.Entry.ChangedBy != "ann" || outcome.Entry.ChangeReason != "a test order" {
		t.Errorf("discard = %d %+v", status, outcome)
	}
	status = a.Do(http.MethodPost, "/v1/admin/poison/0-3/discard", auth, `{"reason": "again"}`, &outcome)
	if status != http.StatusOK || outcome.Result != "unchanged" || outcome.Entry.ChangeReason != "a test order" {
		t.Errorf("second discard = %d %+v, want unchanged", status, outcome)
	}
	a.Do(http.MethodGet, "/v1/admin/poison", auth, "", &list)
	if len(list.Entries) != 0 {
		t.Errorf("new entries after the discard: %+v", list.Entries)
	}
	a.Do(http.MethodGet, "/v1/admin/poison?status=discarded", auth, "", &list)
	if len(list.Entries) != 1 {
		t.Errorf("discarded entries: %d, want 1", len(list.Entries))
	}
	if n := testenv.RecordCount(t, a.Brokers, "order.events"); n != 0 {
		t.Errorf("a discard published %d records", n)
	}
}

func TestAdminRequeue(t *testing.T) {
	a := newAPI(t, token)
	auth := "Bearer " + token
	var outcome poisonhttp.OutcomeJSON
	if status := a.Do(http.MethodPost, "/v1/admin/poison/0-3/requeue", auth, `{"dry_run": true}`, &outcome); status != http.StatusOK || outcome.Result != "would_requeue" {
		t.Errorf("dry run = %d %+v, want would_requeue", status, outcome)
	}
	status := a.Do(http.MethodPost, "/v1/admin/poison/0-3/requeue", auth, "", &outcome)
	if status != http.StatusOK || outcome.Result != "requeued" || outcome.Entry.RequeuedTo == nil || outcome.Entry.RequeuedTo.Topic != "order.events" ||
		*outcome.Entry.RequeuedTo.Partition != 2 {
		t.Errorf("requeue = %d %+v, want requeued to order.events partition 2, where it came from", status, outcome)
	}
	var all struct {
		Outcomes []poisonhttp.OutcomeJSON `json:"outcomes"`
	}
	if status := a.Do(http.MethodPost, "/v1/admin/poison/requeue-all", auth, `{"by": "ann"}`, &all); status != http.StatusOK || len(all.Outcomes) != 0 {
		t.Errorf("requeue-all after the requeue = %d %+v, want nothing to do", status, all)
	}
	if n := testenv.RecordCount(t, a.Brokers, "order.events"); n != 1 {
		t.Errorf("order.events holds %d records, want 1", n)
	}
}

// An entry that does not say where it came from cannot be requeued: 409,
// and it stays new, with nothing published.
func TestAdminRequeueWithoutOriginIsAConflict(t *testing.T) {
	a := newAPI(t, token)
	_, err := a.Store.Add(context.Background(), poison.Entry{
		ID: "0-4", Record: poison.Position{Topic: "payment.poison", Partition: 0, Offset: 4},
		PoisonedAt: time.Now(), Reason: "no origin", Payload: []byte(`{}`), Status: poison.StatusNew,
	})
	if err != nil {
		t.Fatal(err)
	}
	var e apiError
	if status := a.Do(http.MethodPost, "/v1/admin/poison/0-4/requeue", "Bearer "+token, "", &e); status != http.StatusConflict || e.Error.Code != "not_requeueable" {
		t.Errorf("requeue without origin = %d %+v, want 409 not_requeueable", status, e)
	}
	if entry, err := a.Store.Get(context.Background(), "0-4"); err != nil || entry.Status != poison.StatusNew {
		t.Errorf("after the refused requeue the entry is %+v (%v), want it new", entry.Status, err)
	}
	if n := testenv.RecordCount(t, a.Brokers, "order.events"); n != 0 {
		t.Errorf("order.events holds %d records, want none", n)
	}
}

func TestMetricsReportTheQueueDepth(t *testing.T) {
	a := newAPI(t, token)
	_, body := testenv.Call(t, http.MethodGet, a.URL+"/metrics", "", "")
	if !strings.Contains(string(body), "test_poison_queue_depth 1\n") {
		t.Errorf("GET /metrics lacks the depth:\n%s", body)
	}
}
