package service_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/config"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

func TestReadyzChecksDatabaseMigrationsAndKafka(t *testing.T) {
	_, url := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	brokers := testenv.Kafka(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		brokers []string
		status  int
	}{
		{brokers, http.StatusOK},
		{[]string{"127.0.0.1:1"}, http.StatusServiceUnavailable},
	} {
		svc, err := service.New(context.Background(), service.Config{Service: config.Service{DatabaseURL: url, KafkaBrokers: c.brokers}}, logger)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(svc.Handler())
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Checks map[string]string `json:"checks"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		srv.Close()
		svc.Close()
		if resp.StatusCode != c.status || body.Checks["postgres"] != "ok" || body.Checks["migrations"] != "ok" {
			t.Errorf("brokers %v: /readyz = %d %v, want %d", c.brokers, resp.StatusCode, body.Checks, c.status)
		}
		if c.status != http.StatusOK && body.Checks["kafka"] == "ok" {
			t.Errorf("an unreachable Kafka was reported ok")
		}
	}
}

func TestMetricsShowForwarderLagAndRequests(t *testing.T) {
	_, url := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := service.New(context.Background(), service.Config{Service: config.Service{DatabaseURL: url, KafkaBrokers: []string{"127.0.0.1:1"}}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	for range 3 { // no forwarder runs: the events stay unforwarded
		resp, err := http.Post(srv.URL+"/v1/orders", "application/json", strings.NewReader(
			`{"customer_id":"c","currency":"EUR","items":[{"sku":"a","quantity":1,"unit_price":100}]}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`outbox_unforwarded_events{group="forwarder"} 3`,
		`projection_lag_events{projection="order_summaries"} 3`,
		`http_requests_total{code="201",route="POST /v1/orders"} 3`,
		`http_request_duration_seconds_count{route="POST /v1/orders"} 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// The console, as the service wires it: the order service's own figures
// come from its own /metrics in process, and a payment service that does
// not answer shows as such, not as a failed page.
func TestConsoleShowsTheServicesOwnFigures(t *testing.T) {
	_, url := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	brokers := testenv.Kafka(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := service.Config{Service: config.Service{DatabaseURL: url, KafkaBrokers: brokers},
		Console: service.ConsoleSettings{PaymentURL: "http://127.0.0.1:1"}}
	svc, err := service.New(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`data-outbox="order">0<`, "payment outbox</dt><dd>unknown: payment does not answer", "order_summaries"} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET /console/ = %d without %q", resp.StatusCode, want)
		}
	}
}
