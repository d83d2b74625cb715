package service_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/envconfig"
)

func TestReadyzChecksDatabaseMigrationsAndKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	for _, c := range []struct {
		brokers []string
		status  int
	}{
		{brokers, http.StatusOK},
		{[]string{"127.0.0.1:1"}, http.StatusServiceUnavailable},
	} {
		_, _, srv := newService(t, service.Config{Service: envconfig.Service{KafkaBrokers: c.brokers}})
		var body struct {
			Checks map[string]string `json:"checks"`
		}
		status := testenv.DoJSON(t, http.MethodGet, srv.URL+"/readyz", "", "", &body)
		if status != c.status || body.Checks["postgres"] != "ok" || body.Checks["migrations"] != "ok" {
			t.Errorf("brokers %v: /readyz = %d %v, want %d", c.brokers, status, body.Checks, c.status)
		}
		if c.status != http.StatusOK && body.Checks["kafka"] == "ok" {
			t.Errorf("an unreachable Kafka was reported ok")
		}
	}
}

func TestMetricsShowForwarderLagAndRequests(t *testing.T) {
	_, _, srv := newService(t, service.Config{Service: envconfig.Service{KafkaBrokers: []string{"127.0.0.1:1"}}})
	for range 3 { // no forwarder runs: the events stay unforwarded
		placeOrder(t, srv.URL, "c", 100)
	}
	_, body := call(t, http.MethodGet, srv.URL+"/metrics", "")
	for _, want := range []string{
		`outbox_unforwarded_events{group="forwarder"} 3`,
		`projection_lag_events{projection="order_summaries"} 3`,
		`http_requests_total{code="201",route="POST /v1/orders"} 3`,
		`http_request_duration_seconds_count{route="POST /v1/orders"} 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// The console, as the service wires it: the order service's own figures
// come from its own /metrics in process, and a payment service that does
// not answer shows as such, not as a failed page.
func TestConsoleShowsTheServicesOwnFigures(t *testing.T) {
	_, _, srv := newService(t, service.Config{Service: envconfig.Service{KafkaBrokers: testenv.Kafka(t)},
		Console: service.ConsoleSettings{PaymentURL: "http://127.0.0.1:1"}})
	status, body := call(t, http.MethodGet, srv.URL+"/console/", "")
	for _, want := range []string{`data-outbox="order">0<`, "payment outbox</dt><dd>unknown: payment does not answer", "order_summaries"} {
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET /console/ = %d without %q", status, want)
		}
	}
}
