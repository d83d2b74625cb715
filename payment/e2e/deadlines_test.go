package e2e

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/es-outbox/reference/shared/devtools/testenv"
)

// orderEventTypes are the types of an order's events, in stream order.
func (s *system) orderEventTypes(t testing.TB, id string) string {
	t.Helper()
	var types string
	err := s.orderPool.QueryRow(context.Background(),
		`SELECT coalesce(string_agg(event_type, ' ' ORDER BY stream_version), '') FROM events WHERE stream_id = $1`, "order-"+id).Scan(&types)
	if err != nil {
		t.Fatal(err)
	}
	return types
}

// metrics is a service's /metrics page.
func metrics(t testing.TB, baseURL string) string {
	t.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// metric is the value of a metric without labels on a service's /metrics.
func metric(t testing.TB, baseURL, name string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\d+)$`).FindStringSubmatch(metrics(t, baseURL))
	if m == nil {
		t.Fatalf("%s/metrics has no %s", baseURL, name)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// An OrderPlaced the payment service poisons (its gateway fails every
// call) leaves the order without an outcome: the order service fails it by
// its deadline. Once the gateway is back, the poisoned message is requeued
// and charged: that late payment is refunded, once.
func TestPoisonedOrderFailsByItsDeadlineAndALatePaymentIsRefundedOnce(t *testing.T) {
	s := newSystem(t, "CONSUMER_MAX_RETRIES=1", "CONSUMER_RETRY_INTERVAL=10ms")
	s.order, s.orderURL = s.runOrder(t, "ORDER_PAYMENT_TIMEOUT=2s", "ORDER_DEADLINE_CHECK_INTERVAL=50ms")
	s.payment = s.runPayment(t, "GATEWAY_TRANSIENT_FAILURE_RATE=1")
	id := s.place(t, 1_500)
	testenv.Eventually(t, 30*time.Second, "the OrderPlaced poisoned", func() bool {
		return s.count(t, `SELECT count(*) FROM poison_messages`) == 1
	})
	s.waitForStatus(t, id, "payment_failed")
	if _, reason := s.getOrder(t, id); reason != "no payment outcome within 2s" {
		t.Errorf("order failed with reason %q, want the deadline's", reason)
	}
	var early bool
	err := s.orderPool.QueryRow(context.Background(), `SELECT (t.payload->>'at')::timestamptz < (p.payload->>'placed_at')::timestamptz + interval '2 seconds'
		FROM events p JOIN events t USING (stream_id) WHERE stream_id = $1 AND p.stream_version = 1 AND t.stream_version = 2`, "order-"+id).Scan(&early)
	if err != nil {
		t.Fatal(err)
	}
	if early {
		t.Errorf("the order timed out before its deadline")
	}
	if n := metric(t, s.orderURL, "order_payment_timeouts_total"); n != 1 {
		t.Errorf("order_payment_timeouts_total = %d, want 1", n)
	}

	s.payment.Kill()
	s.payment = s.runPayment(t)
	requeue := exec.Command(s.paymentBin, "poison", "requeue", "--all")
	requeue.Env = s.paymentEnv
	if out, err := requeue.CombinedOutput(); err != nil {
		t.Fatalf("payment poison requeue --all: %v\n%s", err, out)
	}
	s.waitForStatus(t, id, "refunded")
	want := "order.OrderPlaced order.PaymentTimedOut order.OrderPaid order.RefundRequested order.OrderRefunded"
	if got := s.orderEventTypes(t, id); got != want {
		t.Errorf("order events %s, want %s", got, want)
	}
	charges := s.count(t, `SELECT count(*) FROM gateway_charges WHERE idempotency_key = $1`, id)
	refunds := s.count(t, `SELECT count(*) FROM gateway_refunds WHERE idempotency_key = $1`, id)
	if charges != 1 || refunds != 1 {
		t.Errorf("%d charges and %d refunds, want one of each", charges, refunds)
	}
}

// Deadlines come from the store, not from timers in memory: orders whose
// deadline passes while no order replica runs are failed when replicas
// start again. Two replicas check the same deadlines, and each order is
// failed once: one PaymentTimedOut each, and the replicas' timeouts add up
// to the number of orders. Nobody answers for payments here.
func TestTwoReplicasTakeEachDeadlineOnceAcrossARestart(t *testing.T) {
	const timeout = 2 * time.Second
	s := newSystem(t, "ORDER_PAYMENT_TIMEOUT="+timeout.String(), "ORDER_DEADLINE_CHECK_INTERVAL=20ms")
	first, url := s.runOrder(t)
	s.orderURL = url
	var ids []string
	for range 10 {
		ids = append(ids, s.place(t, 1_000))
	}
	first.Kill() // before any deadline
	var placedLast time.Time
	_ = s.orderPool.QueryRow(context.Background(), `SELECT max(recorded_at) FROM events`).Scan(&placedLast)
	testenv.Eventually(t, 30*time.Second, "the deadlines passed with no replica running", func() bool {
		var passed bool
		_ = s.orderPool.QueryRow(context.Background(), `SELECT now() > $1::timestamptz + $2::interval`, placedLast, timeout.String()).Scan(&passed)
		return passed
	})
	var timedOut int
	_ = s.orderPool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE event_type = 'order.PaymentTimedOut'`).Scan(&timedOut)
	if n := timedOut; n != 0 {
		t.Fatalf("%d orders timed out while no replica ran", n)
	}

	_, a := s.runOrder(t)
	_, b := s.runOrder(t)
	s.orderURL = a
	for range 10 { // and more while both run
		ids = append(ids, s.place(t, 1_000))
	}
	for _, id := range ids {
		s.waitForStatus(t, id, "payment_failed")
	}
	for _, id := range ids {
		if got := s.orderEventTypes(t, id); got != "order.OrderPlaced order.PaymentTimedOut" {
			t.Errorf("order %s: %s, want placed and timed out once", id, got)
		}
	}
	// A replica counts a sweep's timeouts once the sweep is done, which
	// may be after the last order shows payment_failed.
	timeouts := func() int {
		return metric(t, a, "order_payment_timeouts_total") + metric(t, b, "order_payment_timeouts_total")
	}
	testenv.Eventually(t, 30*time.Second, "the replicas' timeouts counted", func() bool { return timeouts() >= len(ids) })
	if n := timeouts(); n != len(ids) {
		t.Errorf("the replicas took %d timeouts for %d orders", n, len(ids))
	}
	testenv.Eventually(t, 30*time.Second, "no order overdue once the read model follows", func() bool {
		return strings.Contains(metrics(t, a), `order_overdue_orders{status="placed"} 0`)
	})
}
