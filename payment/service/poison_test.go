package service_test

import (
	"bufio"
	"context"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/poison"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
)

// poisonEntries returns the poison store's entries with the status.
func (e *env) poisonEntries(t *testing.T, status poison.Status) []poison.Entry {
	t.Helper()
	entries, err := e.svc.Poison.List(context.Background(), status)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// metric reads a metric without labels from GET /metrics, as Prometheus would.
func (e *env) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric %s = %q", name, value)
			}
			return f
		}
	}
	t.Fatalf("GET /metrics has no %s", name)
	return 0
}

func TestPoisonedMessageRequeuedAfterTheFixIsChargedOnce(t *testing.T) {
	e := start(t, 2)
	ctx := context.Background()
	e.svc.Gateway.FailNext(1_000_000) // the gateway is down
	orderID, payload, headers := orderPlaced(t, 1_000)
	e.produce(t, "order-"+orderID, payload, headers)

	var entries []poison.Entry
	testenv.Eventually(t, 2*time.Minute, "the failing message in the poison store", func() bool {
		entries = e.poisonEntries(t, poison.StatusNew)
		return len(entries) > 0
	})
	entry := entries[0]
	if len(entries) != 1 || entry.Origin.Topic != "order.events" || entry.Key != "order-"+orderID {
		t.Fatalf("poison store holds %+v, want the one OrderPlaced from order.events", entries)
	}
	if depth := e.metric(t, "payment_poison_queue_depth"); depth != 1 {
		t.Errorf("payment_poison_queue_depth = %v with one poisoned message, want 1", depth)
	}
	// The counter moves once Kafka has acknowledged the poisoned copy,
	// which the poison store's consumer may have read before that.
	testenv.Eventually(t, 10*time.Second, "payment_messages_poisoned_total = 1", func() bool {
		return e.metric(t, "payment_messages_poisoned_total") == 1
	})

	e.svc.Gateway.FailNext(0) // the gateway is back
	outcomes, err := e.svc.Poison.Requeue(ctx, poisonapp.RequeueRequest{IDs: []string{entry.ID}, By: "ops"})
	if err != nil || len(outcomes) != 1 || outcomes[0].Result != poisonapp.Requeued {
		t.Fatalf("requeue = %+v, %v; want requeued", outcomes, err)
	}
	testenv.Eventually(t, 2*time.Minute, "the requeued order charged", func() bool {
		return len(e.paymentEvents(t, orderID)) == 2
	})
	var ledger int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM gateway_charges WHERE idempotency_key = $1`, orderID).Scan(&ledger); err != nil || ledger != 1 {
		t.Errorf("gateway ledger has %d charges for the order (%v), want 1", ledger, err)
	}
	stored, err := e.svc.Poison.Entry(ctx, entry.ID)
	if err != nil || stored.Status != poison.StatusRequeued || stored.ChangedBy != "ops" || stored.RequeuedTo.Topic != "order.events" {
		t.Errorf("entry after requeue = %+v (%v), want requeued by ops to order.events", stored, err)
	}
	if depth := e.metric(t, "payment_poison_queue_depth"); depth != 0 {
		t.Errorf("payment_poison_queue_depth = %v after the requeue, want 0", depth)
	}

	outcomes, err = e.svc.Poison.Requeue(ctx, poisonapp.RequeueRequest{IDs: []string{entry.ID}, By: "ops"})
	if err != nil || len(outcomes) != 1 || outcomes[0].Result != poisonapp.Unchanged {
		t.Fatalf("second requeue = %+v, %v; want unchanged", outcomes, err)
	}
	if n := testenv.RecordCount(t, e.brokers, "order.events"); n != 2 {
		t.Errorf("order.events holds %d records, want 2: the original and one requeue", n)
	}
	if n := e.svc.Router.Stats.Poisoned.Load(); n != 1 {
		t.Errorf("%d messages poisoned, want 1: the requeued one must not fail again", n)
	}
	if got := e.paymentEvents(t, orderID); len(got) != 2 || got[1] != contracts.PaymentSucceededType {
		t.Errorf("payment stream has %v, want requested and one success", got)
	}
}

// A record produced by a client that places keys its own way (here on a
// partition that neither Kafka's standard murmur2 nor Sarama's FNV-1a picks
// for its key, as kcat's CRC32 may) and poisoned comes back, when requeued,
// on the partition it was consumed from, where the other records of its key
// are: read back with an independent franz-go consumer.
func TestRequeueReturnsAMessageToItsOriginalPartition(t *testing.T) {
	e := start(t, 1)
	ctx := context.Background()
	key := "order-" + uuid.NewString()
	producer, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	topics, err := kadm.NewClient(producer).ListTopics(ctx, contracts.OrderEventsTopic)
	if err != nil {
		t.Fatal(err)
	}
	partitions := len(topics[contracts.OrderEventsTopic].Partitions)
	byKey := map[int]bool{}
	for _, p := range []kgo.Partitioner{kgo.StickyKeyPartitioner(nil), kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(fnv32a))} {
		byKey[p.ForTopic(contracts.OrderEventsTopic).Partition(&kgo.Record{Key: []byte(key)}, partitions)] = true
	}
	var origin int32
	for byKey[int(origin)] {
		origin++
	}
	if int(origin) >= partitions {
		t.Fatalf("order.events has %d partitions: none left that the key does not hash to", partitions)
	}
	_, _, headers := orderPlaced(t, 1_000)
	rec := &kgo.Record{Topic: contracts.OrderEventsTopic, Partition: origin, Key: []byte(key), Value: []byte(`{"order_id": "trunc`)}
	for k, v := range headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	if err := producer.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var entries []poison.Entry
	testenv.Eventually(t, 2*time.Minute, "the record in the poison store", func() bool {
		entries = e.poisonEntries(t, poison.StatusNew)
		return len(entries) == 1
	})
	if entries[0].Origin.Partition != origin {
		t.Fatalf("the entry says it came from partition %d, want %d", entries[0].Origin.Partition, origin)
	}
	outcomes, err := e.svc.Poison.Requeue(ctx, poisonapp.RequeueRequest{IDs: []string{entries[0].ID}})
	if err != nil || len(outcomes) != 1 || outcomes[0].Entry.RequeuedTo.Partition != origin {
		t.Fatalf("requeue = %+v, %v; want it requeued to partition %d", outcomes, err, origin)
	}
	var requeued []*kgo.Record
	for _, r := range testenv.Records(t, e.brokers, contracts.OrderEventsTopic, 1, 30*time.Second) { // the same event twice
		if testenv.Header(r, contracts.RequeuedFromKey) != "" {
			requeued = append(requeued, r)
		}
	}
	if len(requeued) != 1 || requeued[0].Partition != origin || string(requeued[0].Key) != key {
		t.Errorf("requeued records %v, want one with key %s on partition %d", requeued, key, origin)
	}
}

// fnv32a is Sarama's default key hash.
func fnv32a(b []byte) uint32 {
	h := fnv.New32a()
	h.Write(b)
	return h.Sum32()
}
