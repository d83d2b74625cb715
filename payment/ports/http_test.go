package ports_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/es-outbox/reference/payment/adapters"
	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/payment/ports"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/httpapi"
	"github.com/es-outbox/reference/shared/poison/poisonhttp"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
	"github.com/es-outbox/reference/shared/poison/poisontest"
)

const token = "s3cret-admin-token"

// api serves the payment HTTP API with adminToken over a fresh poison store
// holding entry "0-3", requeueing to a fresh broker.
type api struct {
	t       *testing.T
	url     string
	brokers []string
	store   *poisonstore.Store
}

func newAPI(t *testing.T, adminToken string) *api {
	t.Helper()
	pool, _ := testenv.Database(t, eventstore.Migrations, adapters.Migrations, poisonstore.Migrations)
	brokers := testenv.Kafka(t)
	queue, store := poisontest.NewQueue(t, pool, brokers)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	payments := app.New(adapters.NewPaymentRepository(pool), adapters.NewSimulatedGateway(pool, adapters.GatewayConfig{}), payment.Policy{}, logger)
	reg := httpapi.NewRegistry()
	ports.RegisterMetrics(reg, payments, queue, &consumer.Stats{})
	srv := httptest.NewServer(ports.NewHTTPHandler(payments, queue, adminToken, httpapi.Ops{Registry: reg}))
	t.Cleanup(srv.Close)
	return &api{t: t, url: srv.URL, brokers: brokers, store: store}
}

// do calls the API (see testenv.DoJSON).
func (a *api) do(method, path, auth, body string, out any) int {
	a.t.Helper()
	return testenv.DoJSON(a.t, method, a.url+path, auth, body, out)
}

type apiError = testenv.APIError

// The payment API serves the shared poison-queue admin endpoints
// (shared/poison/poisonhttp tests them whole) behind PAYMENT_ADMIN_TOKEN.
func TestAdminEndpointsUseThePaymentToken(t *testing.T) {
	a := newAPI(t, token)
	var list struct {
		Entries []poisonhttp.PoisonEntryJSON `json:"entries"`
	}
	if status := a.do(http.MethodGet, "/v1/admin/poison", "Bearer "+token, "", &list); status != http.StatusOK || len(list.Entries) != 1 {
		t.Errorf("GET /v1/admin/poison = %d with %d entries, want 200 with 1", status, len(list.Entries))
	}
	var e apiError
	if status := a.do(http.MethodGet, "/v1/admin/poison", "Bearer wrong", "", &e); status != http.StatusUnauthorized {
		t.Errorf("GET /v1/admin/poison with a wrong token = %d, want 401", status)
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
