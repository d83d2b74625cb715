package outbox_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/outbox"
)

const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

var routes = []outbox.Route{{EventTypePrefix: "order.", Topic: "order.events"}}

// startForwarder runs a forwarder that reads batch events per query until
// the returned stop function is called.
func startForwarder(t *testing.T, pool *pgxpool.Pool, brokers []string, batch int) (stop func()) {
	t.Helper()
	f, err := outbox.NewForwarder(outbox.ForwarderConfig{
		DB: stdlib.OpenDBFromPool(pool), Brokers: brokers, Routes: routes, PollInterval: 10 * time.Millisecond, BatchSize: batch,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("forwarder: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// appendEvents writes perStream events to each of streams streams, one
// transaction per event, and returns the event ids in stream order.
func appendEvents(t *testing.T, pool *pgxpool.Pool, prefix string, streams, perStream int) map[string][]string {
	t.Helper()
	ctx := context.Background()
	ids := map[string][]string{}
	for v := range perStream {
		for s := range streams {
			stream := fmt.Sprintf("%s-%d", prefix, s)
			e := eventstore.Event{ID: uuid.NewString(), Type: "order.Tested", SchemaVersion: 1, Payload: []byte(`{}`)}
			origin := eventstore.Context{CorrelationID: "corr-" + stream, Metadata: map[string]string{"traceparent": traceparent}}
			if err := eventstore.Append(ctx, pool, stream, int64(v), origin, e); err != nil {
				t.Fatal(err)
			}
			ids[stream] = append(ids[stream], e.ID)
		}
	}
	return ids
}

// Batches of 3 events: each stream's events are spread over several batches.
func TestForwarderPublishesEveryEventKeyedAndInStreamOrder(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	brokers := testenv.Kafka(t)
	ids := appendEvents(t, pool, "order", 5, 4)
	startForwarder(t, pool, brokers, 3)

	records := testenv.Records(t, brokers, "order.events", 20, 30*time.Second)
	if len(records) != 20 {
		t.Fatalf("got %d records on order.events, want 20", len(records))
	}
	seen := map[string][]string{}
	partitionOf := map[string]int32{}
	for _, r := range records {
		stream := string(r.Key)
		if h := testenv.Header(r, "stream_id"); h != stream {
			t.Errorf("record key %q but stream_id header %q", stream, h)
		}
		if p, ok := partitionOf[stream]; ok && p != r.Partition {
			t.Errorf("stream %s on partitions %d and %d", stream, p, r.Partition)
		}
		partitionOf[stream] = r.Partition
		want := map[string]string{
			"event_type":     "order.Tested",
			"schema_version": "1",
			"stream_version": strconv.Itoa(len(seen[stream]) + 1),
			"correlation_id": "corr-" + stream,
			"traceparent":    traceparent,
		}
		for k, v := range want {
			if got := testenv.Header(r, k); got != v {
				t.Errorf("record of %s: header %s = %q, want %q", stream, k, got, v)
			}
		}
		seen[stream] = append(seen[stream], testenv.Header(r, "event_id"))
	}
	for stream, want := range ids {
		if fmt.Sprint(seen[stream]) != fmt.Sprint(want) {
			t.Errorf("stream %s arrived as %v, want %v", stream, seen[stream], want)
		}
	}
}

func TestForwarderForwardsLateCommittedEvent(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	brokers := testenv.Kafka(t)
	ctx := context.Background()
	startForwarder(t, pool, brokers, 100)

	slow, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	late := eventstore.Event{ID: uuid.NewString(), Type: "order.Late", SchemaVersion: 1, Payload: []byte(`{}`)}
	if err := eventstore.Append(ctx, slow, "order-slow", 0, eventstore.Context{}, late); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, pool, "early", 3, 1) // later positions, committed first
	time.Sleep(200 * time.Millisecond)
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, pool, "after", 1, 1)

	records := testenv.Records(t, brokers, "order.events", 5, 30*time.Second)
	found := false
	for _, r := range records {
		found = found || testenv.Header(r, "event_id") == late.ID
	}
	if !found {
		t.Fatalf("late-committed event %s not forwarded; got %d records", late.ID, len(records))
	}
}

// Stopping the forwarder in the middle of a backlog and starting it again
// loses nothing and, since the stop settles the batch in flight before it
// closes the subscriber, sends nothing twice.
func TestForwarderStoppedMidBacklogLosesNothing(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	brokers := testenv.Kafka(t)
	ids := appendEvents(t, pool, "order", 50, 20) // 1,000 events
	stop := startForwarder(t, pool, brokers, 100)
	testenv.Eventually(t, 30*time.Second, "part of the backlog forwarded", func() bool {
		var acked int64
		_ = pool.QueryRow(context.Background(), `SELECT coalesce(max(offset_acked), 0) FROM outbox_offsets`).Scan(&acked)
		return acked > 100
	})
	stop()
	startForwarder(t, pool, brokers, 100)

	records := testenv.Records(t, brokers, "order.events", 1000, 60*time.Second)
	got := map[string]int{}
	for _, r := range records {
		got[testenv.Header(r, "event_id")]++
	}
	for _, list := range ids {
		for _, id := range list {
			if got[id] == 0 {
				var acked int64
				_ = pool.QueryRow(context.Background(), `SELECT coalesce(max(offset_acked), 0) FROM outbox_offsets`).Scan(&acked)
				t.Fatalf("event %s lost across the restart (%d records, %d distinct, offset %d)", id, len(records), len(got), acked)
			}
		}
	}
	if dups := len(records) - len(got); dups > 0 {
		for _, r := range records {
			if got[testenv.Header(r, "event_id")] > 1 {
				t.Logf("dup %s p%d o%d", testenv.Header(r, "event_id"), r.Partition, r.Offset)
			}
		}
		t.Errorf("%d duplicates after a graceful stop, want none", dups)
	}
}

// With the idle poll an hour long, only the append's notification can wake
// the forwarder. (After a notification it polls every PollInterval for a
// while, in case the event is still invisible behind a transaction open
// elsewhere on the server, as it can be when other tests run.)
func TestForwarderWokenByAppendNotification(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	brokers := testenv.Kafka(t)
	f, err := outbox.NewForwarder(outbox.ForwarderConfig{
		DB: stdlib.OpenDBFromPool(pool), Brokers: brokers, Routes: routes, PollInterval: 50 * time.Millisecond, IdlePollInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("forwarder: %v", err)
		}
	})
	<-f.Running()
	time.Sleep(200 * time.Millisecond) // the first, empty read is over

	// The append notifies at commit (what wakes the forwarder; waking on a
	// notification is TestNotificationEndsTheWait).
	listener, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Release()
	if _, err := listener.Exec(context.Background(), "LISTEN "+eventstore.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = listener.Exec(context.Background(), "UNLISTEN *") }()
	appendEvents(t, pool, "order", 1, 1)
	waitCtx, cancelWait := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelWait()
	if _, err := listener.Conn().WaitForNotification(waitCtx); err != nil {
		t.Fatalf("no notification on %s after an append: %v", eventstore.NotifyChannel, err)
	}
	if records := testenv.Records(t, brokers, "order.events", 1, 30*time.Second); len(records) != 1 {
		t.Fatalf("got %d records after an append to an idle forwarder, want 1", len(records))
	}
}

// An event no route matches stops the forwarder before it: the batch that
// holds it sends nothing, the batches before it are sent and confirmed, and
// the stored offset never passes it.
func TestForwarderStopsAtUnroutedEventWithoutSkippingIt(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	brokers := testenv.Kafka(t)
	var ids []string
	for i, eventType := range []string{"order.Tested", "order.Tested", "unrouted.Tested", "order.Tested"} {
		e := eventstore.Event{ID: uuid.NewString(), Type: eventType, SchemaVersion: 1, Payload: []byte(`{}`)}
		if err := eventstore.Append(context.Background(), pool, fmt.Sprint("order-", i), 0, eventstore.Context{}, e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	startForwarder(t, pool, brokers, 2) // batches [0 1] [2 3]

	// The first batch arrives and its offset is stored; then the forwarder
	// offers the second batch again and again (every 100 ms) and never
	// sends its routed event past the unrouted one.
	testenv.Eventually(t, 60*time.Second, "the first batch's offset stored", func() bool {
		return fmt.Sprint(eventsUpTo(t, pool, storedOffset(t, pool))) == fmt.Sprint(ids[:2])
	})
	records := testenv.Records(t, brokers, "order.events", 2, 60*time.Second)
	var sent []string
	for _, r := range records {
		sent = append(sent, testenv.Header(r, "event_id"))
	}
	// Two streams, so two partitions: Kafka orders records within each only.
	slices.Sort(sent)
	if want := slices.Sorted(slices.Values(ids[:2])); fmt.Sprint(sent) != fmt.Sprint(want) {
		t.Errorf("sent %v, want the batch before the unrouted event, %v", sent, ids[:2])
	}
	if stored := eventsUpTo(t, pool, storedOffset(t, pool)); fmt.Sprint(stored) != fmt.Sprint(ids[:2]) {
		t.Errorf("stored offset covers %v, want %v", stored, ids[:2])
	}
}
