package poisonapp_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/es-outbox/reference/shared/contracts"
	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/poison"
	"github.com/es-outbox/reference/shared/poison/poisonapp"
	"github.com/es-outbox/reference/shared/poison/poisonkafka"
	"github.com/es-outbox/reference/shared/poison/poisonstore"
)

// poisonQueue returns a poison queue on a fresh database and broker, holding
// one new entry, "0-3", poisoned from order.events. wrap, if given, wraps
// its publisher.
func poisonQueue(t *testing.T, wrap func(poisonapp.Publisher) poisonapp.Publisher) (queue *poisonapp.Queue, brokers []string, dbURL string) {
	t.Helper()
	pool, dbURL := testenv.Database(t, poisonstore.Migrations)
	brokers = testenv.Kafka(t)
	store := poisonstore.NewStore(pool)
	requeuer := poisonkafka.NewRequeuePublisher(brokers, "test-requeue")
	t.Cleanup(func() { _ = requeuer.Close() })
	_, err := store.Add(context.Background(), poison.Entry{
		ID: "0-3", Record: poison.Position{Topic: "payment.poison", Partition: 0, Offset: 3},
		PoisonedAt: time.Now(), Reason: "gateway down", Origin: poison.Position{Topic: "order.events", Partition: 1, Offset: 9},
		Key: "order-42", Handler: "charge_order", EventType: "order.OrderPlaced", MessageID: "event-42",
		Metadata: map[string]string{
			"event_id": "event-42", "event_type": "order.OrderPlaced", "correlation_id": "c-42",
			"reason_poisoned": "gateway down", "topic_poisoned": "order.events", "handler_poisoned": "charge_order",
			"subscriber_poisoned": "s", "poisoned_at": "2026-11-27T10:00:00Z", "partition_poisoned": "1",
			"offset_poisoned": "9", "key_poisoned": "order-42",
		},
		Payload: []byte(`{"order_id":"42"}`), Status: poison.StatusNew,
	})
	if err != nil {
		t.Fatal(err)
	}
	var publisher poisonapp.Publisher = requeuer
	if wrap != nil {
		publisher = wrap(requeuer)
	}
	return poisonapp.NewQueue(store, publisher, slog.New(slog.NewTextHandler(io.Discard, nil))), brokers, dbURL
}

// publisherFunc adapts a function to poisonapp.Publisher.
type publisherFunc func(context.Context, poison.Message) (poison.Position, error)

func (f publisherFunc) Publish(ctx context.Context, m poison.Message) (poison.Position, error) {
	return f(ctx, m)
}

func TestRequeuePublishesTheOriginalMessageMarkedAsRequeued(t *testing.T) {
	queue, brokers, _ := poisonQueue(t, nil)
	outcomes, err := queue.Requeue(context.Background(), poisonapp.RequeueRequest{IDs: []string{"0-3"}, By: "ann"})
	if err != nil || len(outcomes) != 1 || outcomes[0].Result != poisonapp.Requeued {
		t.Fatalf("Requeue = %+v, %v", outcomes, err)
	}
	records := testenv.Records(t, brokers, "order.events", 1, 30*time.Second)
	if len(records) != 1 {
		t.Fatalf("order.events holds %d records, want 1", len(records))
	}
	r := records[0]
	if string(r.Key) != "order-42" || string(r.Value) != `{"order_id":"42"}` {
		t.Errorf("requeued key %q value %q; want the original", r.Key, r.Value)
	}
	for k, want := range map[string]string{
		"event_id": "event-42", "event_type": "order.OrderPlaced", "correlation_id": "c-42",
		"_watermill_message_uuid": "event-42", contracts.RequeuedFromKey: "payment.poison 0/3",
	} {
		if got := testenv.Header(r, k); got != want {
			t.Errorf("requeued header %s = %q, want %q", k, got, want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, testenv.Header(r, contracts.RequeuedAtKey)); err != nil {
		t.Errorf("requeued_at %q is not a time", testenv.Header(r, contracts.RequeuedAtKey))
	}
	for _, h := range r.Headers {
		if h.Key == "poisoned_at" || strings.HasSuffix(h.Key, "_poisoned") {
			t.Errorf("requeued message still carries the poison queue's %s", h.Key)
		}
	}
	to := outcomes[0].Entry.RequeuedTo
	if to.Topic != "order.events" || to.Partition != r.Partition || to.Offset != r.Offset {
		t.Errorf("entry says it was requeued to %s; the record is at partition %d offset %d", to, r.Partition, r.Offset)
	}
}

func TestConcurrentRequeuesPublishOnce(t *testing.T) {
	const requeuers = 3
	var (
		dbURL     string // set by poisonQueue, read by the first publish
		firstCall sync.Once
	)
	// The first publish waits until the other requeuers are blocked on the
	// entry's lock, so that they surely run at the same time.
	queue, brokers, dbURL := poisonQueue(t, func(next poisonapp.Publisher) poisonapp.Publisher {
		return publisherFunc(func(ctx context.Context, m poison.Message) (poison.Position, error) {
			firstCall.Do(func() { waitForLockWaiters(t, dbURL, requeuers-1) })
			return next.Publish(ctx, m)
		})
	})
	results := make(chan poisonapp.Result, requeuers)
	var wg sync.WaitGroup
	for range requeuers {
		wg.Go(func() {
			outcomes, err := queue.Requeue(context.Background(), poisonapp.RequeueRequest{IDs: []string{"0-3"}})
			if err != nil {
				t.Error(err)
				return
			}
			results <- outcomes[0].Result
		})
	}
	wg.Wait()
	close(results)
	count := map[poisonapp.Result]int{}
	for r := range results {
		count[r]++
	}
	if count[poisonapp.Requeued] != 1 || count[poisonapp.Unchanged] != requeuers-1 {
		t.Errorf("outcomes of %d concurrent requeues: %v; want one requeued", requeuers, count)
	}
	if n := testenv.RecordCount(t, brokers, "order.events"); n != 1 {
		t.Errorf("order.events holds %d records after concurrent requeues, want 1", n)
	}
}

// waitForLockWaiters waits until n sessions of the database at dbURL wait
// for an advisory lock, watching from a connection of its own.
func waitForLockWaiters(t *testing.T, dbURL string, n int) {
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var waiting int
		err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting)
		if err != nil {
			t.Error(err)
			return
		}
		if waiting >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d requeuers never waited for the entry's lock", n)
}

func TestDiscardKeepsWhoAndWhy(t *testing.T) {
	queue, brokers, _ := poisonQueue(t, nil)
	ctx := context.Background()
	if _, err := queue.Discard(ctx, []string{"0-3"}, "  ", "ann"); err == nil {
		t.Error("a discard without a reason succeeded")
	}
	outcomes, err := queue.Discard(ctx, []string{"0-3"}, "test order, never real", "ann")
	if err != nil || outcomes[0].Result != poisonapp.Discarded {
		t.Fatalf("Discard = %+v, %v", outcomes, err)
	}
	e, _ := queue.Entry(ctx, "0-3")
	if e.Status != poison.StatusDiscarded || e.ChangedBy != "ann" || e.ChangeReason != "test order, never real" || e.ChangedAt.IsZero() {
		t.Errorf("discarded entry = %+v", e)
	}
	outcomes, err = queue.Requeue(ctx, poisonapp.RequeueRequest{All: true})
	if err != nil || len(outcomes) != 0 {
		t.Errorf("requeue --all after the discard = %+v, %v; want nothing", outcomes, err)
	}
	if n := testenv.RecordCount(t, brokers, "order.events"); n != 0 {
		t.Errorf("order.events holds %d records after a discard, want 0", n)
	}
}
