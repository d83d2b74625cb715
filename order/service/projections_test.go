package service_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/config"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/devtools/testenv"
)

// running is an order service serving HTTP in-process.
type running struct {
	svc     *service.Service
	pool    *pgxpool.Pool
	brokers []string
	base    string     // the HTTP API's base URL
	served  chan error // how Serve ended
}

// serve runs the order service in-process, projector included, on a fresh
// database and broker until ctx is done; configure changes its
// configuration first.
func serve(ctx context.Context, t *testing.T, configure ...func(*service.Config)) *running {
	t.Helper()
	pool, url := testenv.Database(t)
	cfg := service.Config{
		Service:   config.Service{DatabaseURL: url, KafkaBrokers: testenv.Kafka(t)},
		Consumer:  consumer.Settings{MaxRetries: 1, RetryInterval: 10 * time.Millisecond},
		Projector: projections.Settings{Enabled: true, PollInterval: 10 * time.Millisecond, BatchSize: 100},
	}
	for _, c := range configure {
		c(&cfg)
	}
	svc, err := service.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &running{svc: svc, pool: pool, brokers: cfg.KafkaBrokers, base: "http://" + ln.Addr().String(), served: make(chan error, 1)}
	go func() { r.served <- svc.Serve(ctx, ln) }()
	return r
}

// order serve keeps the read models up to date: an order placed over HTTP
// shows up in the order list, and the projector stops with the service.
func TestServeProjectsPlacedOrdersIntoTheList(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	r := serve(ctx, t)
	base, served := r.base, r.served

	resp, err := http.Post(base+"/v1/orders", "application/json",
		strings.NewReader(`{"customer_id":"erin","currency":"EUR","items":[{"sku":"lamp","quantity":1,"unit_price":4500}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/orders: %s, want 201", resp.Status)
	}
	testenv.Eventually(t, 60*time.Second, "the order listed", func() bool {
		resp, err := http.Get(base + "/v1/orders?customer_id=erin")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list struct {
			Orders []struct{ Total int64 } `json:"orders"`
		}
		return json.NewDecoder(resp.Body).Decode(&list) == nil && len(list.Orders) == 1 && list.Orders[0].Total == 4500
	})

	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestProjectorSettingsFromTheEnvironment(t *testing.T) {
	t.Setenv("PROJECTOR_ENABLED", "false")
	t.Setenv("PROJECTOR_POLL_INTERVAL", "50ms")
	cfg, err := service.ConfigFromEnv()
	if err != nil || cfg.Projector.Enabled || cfg.Projector.PollInterval != 50*time.Millisecond || cfg.Projector.BatchSize != 500 {
		t.Errorf("config %+v (%v), want the projector disabled, polling every 50ms, 500 per batch", cfg.Projector, err)
	}
	t.Setenv("PROJECTOR_POLL_INTERVAL", "soon")
	if _, err := service.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "PROJECTOR_POLL_INTERVAL") {
		t.Errorf("PROJECTOR_POLL_INTERVAL=soon: %v, want an error naming it", err)
	}
}
