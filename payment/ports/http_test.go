package ports_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/es-outbox/reference/payment/adapters"
	"github.com/es-outbox/reference/payment/app"
	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/payment/ports"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/devtools/poisontest"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/httpserver"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisonhttp"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
)

const token = "s3cret-admin-token"

// newAPI serves the payment HTTP API with adminToken over a fresh poison
// store holding entry "0-3", requeueing to a fresh broker.
func newAPI(t *testing.T, adminToken string) *poisontest.API {
	t.Helper()
	pool, _ := testenv.Database(t, eventstore.Migrations, adapters.Migrations, poisonstore.Migrations)
	return poisontest.NewAPI(t, pool, func(queue *poisonapp.Queue) http.Handler {
		logger := slog.New(slog.DiscardHandler)
		payments := app.New(adapters.NewPaymentRepository(pool), adapters.NewSimulatedGateway(pool, adapters.GatewayConfig{}), payment.Policy{}, logger)
		reg := httpserver.NewRegistry()
		ports.RegisterMetrics(reg, payments, queue, &consumer.Stats{})
		return ports.NewHTTPHandler(payments, queue, adminToken, httpserver.Ops{Registry: reg})
	})
}

type apiError = testenv.APIError

// The payment API serves the shared poison-queue admin endpoints
// (shared/poison/poisonhttp tests them whole) behind PAYMENT_ADMIN_TOKEN.
func TestAdminEndpointsUseThePaymentToken(t *testing.T) {
	a := newAPI(t, token)
	var list struct {
		Entries []poisonhttp.PoisonEntryJSON `json:"entries"`
	}
	if status := a.Do(http.MethodGet, "/v1/admin/poison", "Bearer "+token, "", &list); status != http.StatusOK || len(list.Entries) != 1 {
		t.Errorf("GET /v1/admin/poison = %d with %d entries, want 200 with 1", status, len(list.Entries))
	}
	var e apiError
	if status := a.Do(http.MethodGet, "/v1/admin/poison", "Bearer wrong", "", &e); status != http.StatusUnauthorized {
		t.Errorf("GET /v1/admin/poison with a wrong token = %d, want 401", status)
	}
}

func TestMetricsReportTheQueueDepth(t *testing.T) {
	a := newAPI(t, token)
	_, body := testenv.Call(t, http.MethodGet, a.URL+"/metrics", "", "")
	for _, want := range []string{"payment_poison_queue_depth 1\n", "payment_messages_handled_total 0\n", "# TYPE payment_message_retries_total counter\n", "payment_messages_poisoned_total 0\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /metrics lacks %q:\n%s", want, body)
		}
	}
}
