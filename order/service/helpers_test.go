package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/order/adapters/projections"
	"github.com/es-outbox/reference/order/service"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/envconfig"
)

// newService builds the order service with cfg on a fresh database (which
// it migrates; cfg's DatabaseURL is set to it) and serves its HTTP handler
// in-process, without running its background work; both are closed when
// the test ends.
func newService(t testing.TB, cfg service.Config) (*service.Service, *pgxpool.Pool, *httptest.Server) {
	t.Helper()
	pool, url := testenv.Database(t)
	cfg.DatabaseURL = url
	svc, err := service.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	return svc, pool, srv
}

// running is an order service serving HTTP in-process.
type running struct {
	svc     *service.Service
	pool    *pgxpool.Pool
	brokers []string
	base    string // the HTTP API's base URL
	cancel  context.CancelFunc
	served  chan struct{} // closed when Serve has returned err
	err     error
}

// serve runs the order service in-process, projector included, on a fresh
// database and broker until stop is called or the test ends (the test waits
// for it to stop); configure changes its configuration first.
func serve(t *testing.T, configure ...func(*service.Config)) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pool, url := testenv.Database(t)
	cfg := service.Config{
		Service:   envconfig.Service{DatabaseURL: url, KafkaBrokers: testenv.Kafka(t)},
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
	r := &running{svc: svc, pool: pool, brokers: cfg.KafkaBrokers, base: "http://" + ln.Addr().String(), cancel: cancel, served: make(chan struct{})}
	go func() { r.err = svc.Serve(ctx, ln); close(r.served) }()
	t.Cleanup(func() { cancel(); <-r.served })
	return r
}

// stop ends Serve and returns how it ended; the test fails if it does not
// stop within 15 s.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.served:
		return r.err
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
		return nil
	}
}

// call sends a request with a JSON body (none if empty) and returns the
// answer's status and body.
func call(t testing.TB, method, url, body string) (int, string) {
	t.Helper()
	status, answer := testenv.Call(t, method, url, "", body)
	return status, string(answer)
}

// placeOrder places an order of one lamp at unitPrice for customer through
// the API at base, and returns its id.
func placeOrder(t testing.TB, base, customer string, unitPrice int64) string {
	t.Helper()
	status, body := call(t, http.MethodPost, base+"/v1/orders",
		fmt.Sprintf(`{"customer_id":%q,"currency":"EUR","items":[{"sku":"lamp","quantity":1,"unit_price":%d}]}`, customer, unitPrice))
	var placed struct {
		OrderID string `json:"order_id"`
	}
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &placed) != nil {
		t.Fatalf("POST /v1/orders = %d %s", status, body)
	}
	return placed.OrderID
}
