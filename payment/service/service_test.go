package service_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/payment/adapters"
	"github.com/es-outbox/reference/payment/domain/payment"
	"github.com/es-outbox/reference/payment/service"
	"github.com/es-outbox/reference/shared/consumer"
	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/envconfig"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/outbox"
	"github.com/es-outbox/reference/shared/poison"
)

type env struct {
	pool    *pgxpool.Pool
	brokers []string
	svc     *service.Service
	client  *kgo.Client
	cfg     service.Config
	stop    func() // stops the running instance
	// url is the base URL of the running instance's HTTP API.
	url string
}

// start runs the payment service in-process on a fresh database and broker.
func start(t *testing.T, maxRetries int) *env {
	t.Helper()
	pool, url := testenv.Database(t, eventstore.Migrations, adapters.Migrations)
	brokers := testenv.Kafka(t)
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	e := &env{pool: pool, brokers: brokers, client: client}
	e.cfg = service.Config{
		Service:      envconfig.Service{DatabaseURL: url, KafkaBrokers: brokers},
		Consumer:     consumer.Settings{MaxRetries: maxRetries, RetryInterval: 10 * time.Millisecond},
		ApproveLimit: 10_000,
		Forwarder:    outbox.Settings{Enabled: true, PollInterval: 10 * time.Millisecond, BatchSize: 100},
	}
	e.stop = e.run(t)
	return e
}

// run starts an instance of the payment service; the returned function stops it.
func (e *env) run(t *testing.T) (stop func()) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := service.New(context.Background(), e.cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + ln.Addr().String()
	stopRun := testenv.Go(t, "payment service", func(ctx context.Context) error { return svc.Run(ctx, ln) })
	stop = sync.OnceFunc(func() { stopRun(); svc.Close() })
	t.Cleanup(stop)
	return stop
}

// produce writes a record to order.events with franz-go, as the order
// service's forwarder would, keyed by key.
func (e *env) produce(t *testing.T, key string, value []byte, headers map[string]string) {
	t.Helper()
	rec := &kgo.Record{Topic: contracts.OrderEventsTopic, Key: []byte(key), Value: value}
	for k, v := range headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	if err := e.client.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func orderPlaced(t *testing.T, total int64) (orderID string, payload []byte, headers map[string]string) {
	orderID = uuid.NewString()
	payload, err := json.Marshal(contracts.OrderPlaced{
		OrderID: orderID, CustomerID: "c-1", Currency: "EUR", Total: total, PlacedAt: time.Now(),
		Items: []contracts.LineItem{{SKU: "sku-1", Quantity: 1, UnitPrice: total}},
	})
	if err != nil {
		t.Fatal(err)
	}
	eventID := uuid.NewString()
	return orderID, payload, map[string]string{
		"_watermill_message_uuid": eventID, "event_id": eventID, "event_type": contracts.OrderPlacedType,
		"schema_version": strconv.Itoa(contracts.OrderPlacedVersion), "stream_id": "order-" + orderID, "stream_version": "1",
	}
}

// paymentEvents returns the types of the events in the order's payment stream.
func (e *env) paymentEvents(t *testing.T, orderID string) []string {
	var types []string
	rows, err := e.pool.Query(context.Background(), `SELECT event_type FROM events WHERE stream_id = $1 ORDER BY stream_version`, adapters.StreamID(orderID))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		_ = rows.Scan(&typ)
		types = append(types, typ)
	}
	return types
}

func TestOrderPlacedIsChargedOrDeclinedByAmount(t *testing.T) {
	e := start(t, 3)
	approved, payload, headers := orderPlaced(t, 2_500)
	e.produce(t, "order-"+approved, payload, headers)
	declined, payload, headers := orderPlaced(t, 50_000)
	e.produce(t, "order-"+declined, payload, headers)

	testenv.Eventually(t, 2*time.Minute, "both payments decided", func() bool {
		return len(e.paymentEvents(t, approved)) == 2 && len(e.paymentEvents(t, declined)) == 2
	})
	if got := e.paymentEvents(t, approved); got[1] != contracts.PaymentSucceededType {
		t.Errorf("order of 25.00 ended %v, want %s", got, contracts.PaymentSucceededType)
	}
	if got := e.paymentEvents(t, declined); got[1] != contracts.PaymentDeclinedType {
		t.Errorf("order of 500.00 ended %v, want %s", got, contracts.PaymentDeclinedType)
	}
	// The payment events are forwarded to payment.events through the payment outbox.
	records := testenv.Records(t, e.brokers, "payment.events", 4, 30*time.Second)
	if len(records) != 4 {
		t.Errorf("payment.events holds %d records, want 4", len(records))
	}
}

// Orders the service refuses on their merits (nothing to charge, a currency
// it does not take) are declined with the reason, without the gateway, and
// nothing is poisoned: the order learns its outcome like any other.
func TestRefusedOrdersAreDeclinedWithAReasonNotPoisoned(t *testing.T) {
	e := start(t, 1)
	e.cfg.Policy = payment.Policy{Currencies: []string{"EUR"}}
	e.stop()
	e.stop = e.run(t)
	zero, payload, headers := orderPlaced(t, 0)
	e.produce(t, "order-"+zero, payload, headers)
	usd, payload, headers := orderPlaced(t, 1_000)
	payload = bytes.Replace(payload, []byte(`"currency":"EUR"`), []byte(`"currency":"USD"`), 1)
	e.produce(t, "order-"+usd, payload, headers)

	reasons := map[string]string{}
	testenv.Eventually(t, 2*time.Minute, "both payments declined", func() bool {
		rows, err := e.pool.Query(context.Background(), `SELECT stream_id, payload->>'reason' FROM events WHERE event_type = $1`, contracts.PaymentDeclinedType)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var stream, reason string
			_ = rows.Scan(&stream, &reason)
			reasons[stream] = reason
		}
		return len(reasons) == 2
	})
	for id, want := range map[string]string{zero: "amount 0 is not positive", usd: "currency USD is not supported"} {
		if got := reasons[adapters.StreamID(id)]; !strings.Contains(got, want) {
			t.Errorf("order %s declined with %q, want a reason saying %q", id, got, want)
		}
	}
	if calls := e.svc.Gateway.Calls(); calls != 0 {
		t.Errorf("gateway called %d times for refused orders, want 0", calls)
	}
	if poisoned := e.svc.Router.Stats.Poisoned.Load(); poisoned != 0 {
		t.Errorf("%d messages poisoned, want 0", poisoned)
	}
	// Both declines go out on payment.events to the order service.
	if records := testenv.Records(t, e.brokers, "payment.events", 4, 30*time.Second); len(records) != 4 {
		t.Errorf("payment.events holds %d records, want 4 (requested and declined, twice)", len(records))
	}
}

func TestRedeliveredOrderPlacedChargesOnce(t *testing.T) {
	e := start(t, 3)
	orderID, payload, headers := orderPlaced(t, 1_000)
	e.produce(t, "order-"+orderID, payload, headers)
	e.produce(t, "order-"+orderID, payload, headers) // the same event again
	marker, payload2, headers2 := orderPlaced(t, 1_000)
	e.produce(t, "order-"+orderID, payload2, headers2) // same partition, after both

	testenv.Eventually(t, 2*time.Minute, "the message behind the duplicate processed", func() bool {
		return len(e.paymentEvents(t, marker)) == 2
	})
	if got := e.paymentEvents(t, orderID); len(got) != 2 {
		t.Errorf("payment stream has %v after a redelivery, want requested and one outcome", got)
	}
	if calls := e.svc.Gateway.Calls(); calls != 2 {
		t.Errorf("gateway called %d times for two orders, want 2 (the redelivery must not call it)", calls)
	}
	var ledger int
	_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM gateway_charges WHERE idempotency_key = $1`, orderID).Scan(&ledger)
	if ledger != 1 {
		t.Errorf("gateway ledger has %d charges for the order, want 1", ledger)
	}
}

func TestMalformedMessageIsRetriedThenPoisonedAndTheNextIsProcessed(t *testing.T) {
	const maxRetries = 4
	e := start(t, maxRetries)
	key := "order-" + uuid.NewString()
	_, _, headers := orderPlaced(t, 1_000)
	e.produce(t, key, []byte(`{"order_id": "truncated`), headers)
	next, payload, nextHeaders := orderPlaced(t, 1_000)
	e.produce(t, key, payload, nextHeaders) // same key, so same partition, right behind it

	testenv.Eventually(t, 2*time.Minute, "the message behind the poisoned one processed", func() bool {
		return len(e.paymentEvents(t, next)) == 2
	})
	if got := e.svc.Router.Stats.Retries.Load(); got != maxRetries {
		t.Errorf("malformed message retried %d times, want %d", got, maxRetries)
	}
	var entries []poison.Entry
	testenv.Eventually(t, 2*time.Minute, "the poisoned message in the poison store", func() bool {
		entries = e.poisonEntries(t, poison.StatusNew)
		return len(entries) > 0
	})
	if len(entries) != 1 {
		t.Fatalf("poison store holds %d entries, want 1", len(entries))
	}
	p := entries[0]
	if p.Key != key || string(p.Payload) != `{"order_id": "truncated` {
		t.Errorf("poisoned message key %q payload %q; want the original", p.Key, p.Payload)
	}
	if p.Origin.Topic != "order.events" || p.Handler != "charge_order" || p.EventType != contracts.OrderPlacedType {
		t.Errorf("poisoned message from %s, handler %q, event type %q; want order.events, charge_order, %s",
			p.Origin, p.Handler, p.EventType, contracts.OrderPlacedType)
	}
	if p.Reason == "" || p.Origin.Offset < 0 || p.Metadata[contracts.PoisonedOffsetKey] == "" || p.Metadata["event_id"] != headers["event_id"] {
		t.Errorf("poisoned message lacks its reason, origin or original metadata: %+v", p)
	}
}

// Hostile or broken producers (here an independent franz-go client): every
// bad message ends in the poison queue with a reason a person can act on,
// and the consumer goes on with the good message behind them.
func TestBadMessagesArePoisonedWithAReadableReason(t *testing.T) {
	e := start(t, 1)
	key := "order-" + uuid.NewString()
	_, valid, headers := orderPlaced(t, 1_000)
	with := func(header, value string) map[string]string {
		h := maps.Clone(headers)
		if value == "" {
			delete(h, header)
		} else {
			h[header] = value
		}
		return h
	}
	cases := []struct {
		name    string
		payload []byte
		headers map[string]string
		reason  string
	}{
		{"no headers at all", valid, nil, "no event_type header"},
		{"no event_type", valid, with("event_type", ""), "no event_type header"},
		{"garbage schema_version", valid, with("schema_version", "v2\x00"), "no valid schema_version header"},
		{"schema version from the future", valid, with("schema_version", "99"), "99"},
		{"truncated JSON", valid[:len(valid)/2], headers, "payload is not valid"},
		{"not JSON", []byte{0xff, 0xfe, 0x00, 0x01}, headers, "payload is not valid"},
		{"wrong field types", []byte(`{"order_id": 42, "total": "lots"}`), headers, "payload is not valid"},
	}
	for _, c := range cases {
		e.produce(t, key, c.payload, c.headers)
	}
	next, payload, nextHeaders := orderPlaced(t, 1_000)
	e.produce(t, key, payload, nextHeaders) // same key, so same partition, behind them all

	testenv.Eventually(t, 60*time.Second, "the good message behind the bad ones processed", func() bool {
		return len(e.paymentEvents(t, next)) == 2
	})
	var entries []poison.Entry
	testenv.Eventually(t, 2*time.Minute, "every bad message in the poison store", func() bool {
		entries = e.poisonEntries(t, poison.StatusNew)
		return len(entries) >= len(cases)
	})
	if len(entries) != len(cases) {
		t.Fatalf("poison store holds %d entries, want %d", len(entries), len(cases))
	}
	slices.SortFunc(entries, func(a, b poison.Entry) int { return cmp.Compare(a.Origin.Offset, b.Origin.Offset) })
	for i, c := range cases {
		if p := entries[i]; !bytes.Equal(p.Payload, c.payload) || !strings.Contains(p.Reason, c.reason) {
			t.Errorf("%s: poisoned with payload %q and reason %q; want the original payload and a reason saying %q",
				c.name, p.Payload, p.Reason, c.reason)
		}
	}
}

// The consumer group's offsets are lost (the group deleted) and every
// OrderPlaced is delivered again: nothing is charged twice.
func TestReplayedOffsetsChargeNothingTwice(t *testing.T) {
	e := start(t, 3)
	var orders []string
	for range 3 {
		id, payload, headers := orderPlaced(t, 1_000)
		e.produce(t, "order-"+id, payload, headers)
		orders = append(orders, id)
	}
	testenv.Eventually(t, 2*time.Minute, "three payments decided", func() bool {
		return len(e.paymentEvents(t, orders[2])) == 2 && len(e.paymentEvents(t, orders[0])) == 2 && len(e.paymentEvents(t, orders[1])) == 2
	})
	e.stop()

	adm := kadm.NewClient(e.client)
	if _, err := adm.DeleteGroup(context.Background(), contracts.PaymentGroup); err != nil {
		t.Fatal(err)
	}
	e.stop = e.run(t)
	testenv.Eventually(t, 2*time.Minute, "the three OrderPlaced consumed again", func() bool {
		return e.svc.Router.Stats.Handled.Load() >= 3
	})
	if calls := e.svc.Gateway.Calls(); calls != 0 {
		t.Errorf("the replay called the gateway %d times, want 0", calls)
	}
	var charges int
	_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM gateway_charges`).Scan(&charges)
	if charges != 3 {
		t.Errorf("gateway ledger has %d charges for 3 orders, want 3", charges)
	}
	for _, id := range orders {
		if got := e.paymentEvents(t, id); len(got) != 2 {
			t.Errorf("payment stream of %s is %v after the replay", id, got)
		}
	}
}

// The process died after asking the gateway but before storing the outcome:
// the redelivery asks again with the same idempotency key and records the
// first charge, not a second one.
func TestCrashBetweenChargeAndOutcomeChargesOnce(t *testing.T) {
	e := start(t, 3)
	ctx := context.Background()
	id, payload, headers := orderPlaced(t, 1_000)
	req := payment.Request{OrderID: id, Amount: 1_000, Currency: "EUR"}
	if _, err := adapters.NewPaymentRepository(e.pool).Update(ctx, id, func(p *payment.Payment) error {
		return p.Request(req, payment.Policy{}, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	first, err := e.svc.Gateway.Charge(ctx, req)
	if err != nil {
		t.Fatal(err)
	}

	e.produce(t, "order-"+id, payload, headers)
	testenv.Eventually(t, 2*time.Minute, "the payment decided", func() bool { return len(e.paymentEvents(t, id)) == 2 })
	var chargeID string
	_ = e.pool.QueryRow(ctx, `SELECT payload->>'charge_id' FROM events WHERE stream_id = $1 AND stream_version = 2`, adapters.StreamID(id)).Scan(&chargeID)
	var charges int
	_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM gateway_charges WHERE idempotency_key = $1`, id).Scan(&charges)
	if chargeID != first.ID || charges != 1 {
		t.Errorf("recorded charge %s with %d ledger charges; want the first charge %s, once", chargeID, charges, first.ID)
	}
}

// A gateway that fails transiently twice and then answers: the message is
// retried, charged once, and nothing is poisoned.
func TestTransientFailuresAreRetriedNotPoisoned(t *testing.T) {
	e := start(t, 3)
	e.svc.Gateway.FailNext(2)
	id, payload, headers := orderPlaced(t, 1_000)
	e.produce(t, "order-"+id, payload, headers)
	testenv.Eventually(t, 2*time.Minute, "the payment decided", func() bool { return len(e.paymentEvents(t, id)) == 2 })
	if got := e.paymentEvents(t, id); got[1] != contracts.PaymentSucceededType {
		t.Errorf("payment stream %v, want a success after the retries", got)
	}
	if retries := e.svc.Router.Stats.Retries.Load(); retries != 2 {
		t.Errorf("%d retries, want 2", retries)
	}
	if calls := e.svc.Gateway.Calls(); calls != 3 {
		t.Errorf("%d gateway calls, want 3 (two failures, one charge)", calls)
	}
	if poisoned := e.svc.Router.Stats.Poisoned.Load(); poisoned != 0 {
		t.Errorf("%d messages poisoned, want 0", poisoned)
	}
	var charges int
	_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM gateway_charges WHERE idempotency_key = $1`, id).Scan(&charges)
	if charges != 1 {
		t.Errorf("%d charges, want 1", charges)
	}

	// The payment as the HTTP API shows it.
	var p struct {
		Status   string `json:"status"`
		Amount   int64  `json:"amount"`
		ChargeID string `json:"charge_id"`
		History  []struct {
			Type string `json:"type"`
		} `json:"history"`
	}
	status := testenv.DoJSON(t, http.MethodGet, e.url+"/v1/payments/"+id, "", "", &p)
	if status != 200 || p.Status != "succeeded" || p.Amount != 1_000 || p.ChargeID == "" || len(p.History) != 2 {
		t.Errorf("GET /v1/payments/%s = %d %+v", id, status, p)
	}
	for path, want := range map[string]int{"/v1/payments/" + uuid.NewString(): 404, "/v1/payments/nope": 400} {
		if status, _ := testenv.Call(t, http.MethodGet, e.url+path, "", ""); status != want {
			t.Errorf("GET %s = %d, want %d", path, status, want)
		}
	}
}

// A backlog of orders fetched and handled together: every third order asked
// to be refunded right behind its OrderPlaced (same key, mostly the same
// fetch), the gateway failing the first calls, one malformed message among
// them, and the service restarted in the middle of the backlog. Every order
// is charged exactly once and every refund made once, after its charge;
// only the malformed message is poisoned; and the payments of the orders
// handled together were stored together (fewer transactions than payments).
func TestABacklogHandledTogetherChargesAndRefundsEachOrderOnceInOrder(t *testing.T) {
	e := start(t, 3)
	e.stop() // the backlog builds up while the service is down
	const orders = 120
	var ids []string
	refunded := map[string]bool{}
	var records []*kgo.Record
	record := func(key string, value []byte, headers map[string]string) {
		rec := &kgo.Record{Topic: contracts.OrderEventsTopic, Key: []byte(key), Value: value}
		for k, v := range headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		records = append(records, rec)
	}
	malformedKey := "order-" + uuid.NewString()
	for i := range orders {
		id, payload, headers := orderPlaced(t, 1_000)
		ids = append(ids, id)
		record("order-"+id, payload, headers)
		if i == orders/2 {
			_, _, bad := orderPlaced(t, 1_000)
			record(malformedKey, []byte(`{"order_id": "truncated`), bad)
		}
		if i%3 == 0 {
			refunded[id] = true
			refund, _ := json.Marshal(contracts.OrderRefundRequested{OrderID: id, Amount: 1_000, Currency: "EUR", Reason: "cancelled", At: time.Now()})
			eventID := uuid.NewString()
			record("order-"+id, refund, map[string]string{
				"_watermill_message_uuid": eventID, "event_id": eventID, "event_type": contracts.OrderRefundRequestedType,
				"schema_version": strconv.Itoa(contracts.OrderRefundRequestedVersion), "stream_id": "order-" + id,
			})
		}
	}
	if err := e.client.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	done := func(id string) bool {
		want := 2
		if refunded[id] {
			want = 4
		}
		return len(e.paymentEvents(t, id)) == want
	}
	decided := func() (n int) {
		for _, id := range ids {
			if done(id) {
				n++
			}
		}
		return n
	}

	e.stop = e.run(t)
	e.svc.Gateway.FailNext(5)
	testenv.Eventually(t, 2*time.Minute, "a third of the orders done", func() bool { return decided() >= orders/3 })
	e.stop() // in the middle of the backlog
	e.stop = e.run(t)
	testenv.Eventually(t, 2*time.Minute, "every order done", func() bool { return decided() == orders })

	for _, id := range ids {
		var charges, refunds int
		_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM gateway_charges WHERE idempotency_key = $1`, id).Scan(&charges)
		_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM gateway_refunds WHERE idempotency_key = $1`, id).Scan(&refunds)
		want := []string{contracts.PaymentRequestedType, contracts.PaymentSucceededType}
		wantRefunds := 0
		if refunded[id] {
			want, wantRefunds = append(want, contracts.PaymentRefundRequestedType, contracts.PaymentRefundedType), 1
		}
		if got := e.paymentEvents(t, id); charges != 1 || refunds != wantRefunds || !slices.Equal(got, want) {
			t.Errorf("order %s: %d charges, %d refunds, payment stream %v; want 1, %d, %v", id, charges, refunds, got, wantRefunds, want)
		}
	}
	var entries []poison.Entry
	testenv.Eventually(t, time.Minute, "the malformed message in the poison store", func() bool {
		entries = e.poisonEntries(t, poison.StatusNew)
		return len(entries) > 0
	})
	for _, p := range entries {
		if p.Key != malformedKey {
			t.Errorf("poisoned %s (%s), want only the malformed message", p.Key, p.Reason)
		}
	}
	var appends, transactions int
	_ = e.pool.QueryRow(context.Background(), `SELECT count(DISTINCT (stream_id, transaction_id)), count(DISTINCT transaction_id)
		FROM events WHERE stream_id LIKE 'payment-%'`).Scan(&appends, &transactions)
	if transactions*2 > appends {
		t.Errorf("%d payment appends in %d transactions; want those handled together stored together", appends, transactions)
	}
	t.Logf("%d payment appends in %d transactions", appends, transactions)
}
