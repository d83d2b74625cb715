// Package e2e runs the whole pipeline as separate processes, the way a user
// runs it: order (HTTP API, forwarder, consumer of payment outcomes) and
// payment binaries, PostgreSQL, and the development Kafka broker.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/es-outbox/reference/payment/adapters"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
)

type system struct {
	orderURL       string
	orderDB        string
	brokers        []string
	orderPool      *pgxpool.Pool
	paymentPool    *pgxpool.Pool
	order, payment *testenv.Process
	// The binaries and the environment every process of each gets.
	orderBin, paymentBin string
	orderEnv, paymentEnv []string
}

// start runs order and payment as processes on fresh databases and a broker;
// the gateway approves up to 100.00. env is added to both processes'.
func start(t testing.TB, env ...string) *system {
	t.Helper()
	return startWith(t, nil, env...)
}

// startWith is start with orderEnv added to the order service's environment
// alone.
func startWith(t testing.TB, orderEnv []string, env ...string) *system {
	t.Helper()
	s := newSystem(t, env...)
	s.order, s.orderURL = s.runOrder(t, orderEnv...)
	s.payment = s.runPayment(t)
	return s
}

// newSystem builds the binaries and prepares the databases and a broker,
// and starts nothing; env is added to every process's environment.
func newSystem(t testing.TB, env ...string) *system {
	t.Helper()
	orderPool, orderDB := testenv.Database(t)
	paymentPool, paymentDB := testenv.Database(t, eventstore.Migrations, adapters.Migrations, poisonstore.Migrations)
	brokers := testenv.Kafka(t)
	common := append([]string{"KAFKA_BROKERS=" + brokers[0], "LOG_LEVEL=warn", "FORWARDER_POLL_INTERVAL=10ms"}, env...)
	return &system{
		brokers: brokers, orderDB: orderDB, orderPool: orderPool, paymentPool: paymentPool,
		orderBin:   testenv.Build(t, "github.com/es-outbox/reference/order/cmd/order"),
		paymentBin: testenv.Build(t, "github.com/es-outbox/reference/payment/cmd/payment"),
		orderEnv:   append(slices.Clone(common), "DATABASE_URL="+orderDB),
		paymentEnv: append(slices.Clone(common), "DATABASE_URL="+paymentDB, "GATEWAY_APPROVE_LIMIT=10000"),
	}
}

// runOrder starts a replica of the order service, with env added, and
// returns it with its API's URL once it answers.
func (s *system) runOrder(t testing.TB, env ...string) (*testenv.Process, string) {
	t.Helper()
	addr := freeAddr(t)
	p := testenv.Start(t, s.orderBin, slices.Concat(s.orderEnv, []string{"HTTP_ADDR=" + addr}, env), "serve")
	url := "http://" + addr
	testenv.Eventually(t, 30*time.Second, "the order API up", func() bool {
		resp, err := http.Get(url + "/livez")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return p, url
}

// runPayment starts a replica of the payment service, with env added.
func (s *system) runPayment(t testing.TB, env ...string) *testenv.Process {
	t.Helper()
	return testenv.Start(t, s.paymentBin, slices.Concat(s.paymentEnv, []string{"PAYMENT_HTTP_ADDR=" + freeAddr(t)}, env), "serve")
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// place places an order of one item at unitPrice and returns its id.
func (s *system) place(t *testing.T, unitPrice int64) string {
	t.Helper()
	id, err := s.post(unitPrice)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// client keeps enough connections open for the benchmarks' rates:
// http.DefaultClient keeps two per host, and at hundreds of orders a second
// most requests would open a connection of their own.
var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

// placeAt places n orders, rate a second, each from a goroutine of its own,
// and returns once all have answered.
func (s *system) placeAt(rate, n int) error {
	return s.placeOn([]string{s.orderURL}, rate, n)
}

// placeOn is placeAt on the order replicas at urls, in turn. The i-th
// order is due i/rate seconds after the first, and one the client gets to
// late (it shares the cores) is placed at once: the rate offered is kept on
// average, where a ticker would drop the ticks the client was late for.
func (s *system) placeOn(urls []string, rate, n int) error {
	var posts errgroup.Group
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		posts.Go(func() error {
			_, err := postTo(urls[i%len(urls)], 4_500)
			return err
		})
	}
	return posts.Wait()
}

// post is place for any goroutine: it returns what went wrong.
func (s *system) post(unitPrice int64) (string, error) {
	return postTo(s.orderURL, unitPrice)
}

// postTo is post to the order replica at url.
func postTo(url string, unitPrice int64) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/orders", strings.NewReader(fmt.Sprintf(
		`{"customer_id":"c-7","currency":"EUR","items":[{"sku":"book","quantity":1,"unit_price":%d}]}`, unitPrice)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Correlation-ID", "e2e-"+strconv.FormatInt(unitPrice, 10))
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var created struct {
		OrderID string `json:"order_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	if resp.StatusCode != http.StatusCreated || created.OrderID == "" {
		return "", fmt.Errorf("POST /v1/orders = %d", resp.StatusCode)
	}
	return created.OrderID, nil
}

func (s *system) status(t testing.TB, id string) string {
	status, _ := s.getOrder(t, id)
	return status
}

func (s *system) waitForStatus(t testing.TB, id, want string) {
	t.Helper()
	started := time.Now()
	testenv.Eventually(t, 2*time.Minute, "order "+id+" "+want, func() bool { return s.status(t, id) == want })
	t.Logf("order %s %s after %s", id, want, time.Since(started))
}

func (s *system) count(t *testing.T, query string, args ...any) int {
	var n int
	if err := s.paymentPool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSaga(t *testing.T) {
	s := start(t)
	approved := s.place(t, 4_500)
	declined := s.place(t, 50_000)
	refunded := s.place(t, 2_000)

	s.waitForStatus(t, approved, "paid")
	s.waitForStatus(t, declined, "payment_failed")

	s.waitForStatus(t, refunded, "paid")
	resp, err := http.Post(s.orderURL+"/v1/orders/"+refunded+"/cancel", "application/json", strings.NewReader(`{"reason":"changed my mind"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cancel a paid order = %d, want 200", resp.StatusCode)
	}
	s.waitForStatus(t, refunded, "refunded")

	// The refund happened once: one gateway refund, one PaymentRefunded.
	if n := s.count(t, `SELECT count(*) FROM gateway_refunds WHERE idempotency_key = $1`, refunded); n != 1 {
		t.Errorf("gateway refunded the order %d times, want 1", n)
	}
	if n := s.count(t, `SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = $2`, adapters.StreamID(refunded), contracts.PaymentRefundedType); n != 1 {
		t.Errorf("payment stream has %d PaymentRefunded, want 1", n)
	}
	if n := s.count(t, `SELECT count(*) FROM gateway_charges`); n != 3 {
		t.Errorf("gateway ledger has %d charges for 3 orders, want 3", n)
	}

	// Kafka holds the refunded order's events in stream order, with their
	// headers, read with an independent client.
	stream := "order-" + refunded
	var versions []string
	for _, r := range testenv.Records(t, s.brokers, "order.events", 2+2+4, 2*time.Minute) {
		if string(r.Key) != stream {
			continue
		}
		versions = append(versions, testenv.Header(r, "stream_version")+":"+testenv.Header(r, "event_type"))
		if testenv.Header(r, "stream_id") != stream || len(testenv.Header(r, "event_id")) != 36 || !strings.HasPrefix(testenv.Header(r, "traceparent"), "00-") {
			t.Errorf("record %v lacks its headers", r.Headers)
		}
	}
	want := fmt.Sprint([]string{"1:" + contracts.OrderPlacedType, "2:" + contracts.OrderPaidType,
		"3:" + contracts.OrderRefundRequestedType, "4:" + contracts.OrderRefundedType})
	if fmt.Sprint(versions) != want {
		t.Errorf("order.events holds %v for the refunded order, want %s", versions, want)
	}
	// The first event carries the request's correlation id all the way.
	var correlation string
	_ = s.paymentPool.QueryRow(context.Background(), `SELECT correlation_id FROM events WHERE stream_id = $1 ORDER BY stream_version LIMIT 1`,
		adapters.StreamID(approved)).Scan(&correlation)
	if correlation != "e2e-4500" {
		t.Errorf("payment events carry correlation id %q, want the request's e2e-4500", correlation)
	}
}
