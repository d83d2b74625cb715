package service_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/es-outbox/reference/order/adapters"
	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/config"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/testenv"
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
