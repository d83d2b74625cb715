package outbox_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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
	return testenv.Go(t, "forwarder", f.Run)
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

// An event whose transaction took its position before three others but
// commits after them is forwarded all the same: a reader that read past the
// early rows before the late commit (and stored an offset beyond the late
// event's position) would never read it. The late commit waits until the
// forwarder has read the events table twice since the early rows committed,
// so that it had the chance to read past them.
func TestForwarderForwardsLateCommittedEvent(t *testing.T) {
	pool, url := testenv.Database(t, eventstore.Migrations)
	brokers := testenv.Kafka(t)
	ctx := context.Background()
	reads := &readCounter{}
	startForwarder(t, tracedPool(t, url, reads), brokers, 100)

	slow, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	late := eventstore.Event{ID: uuid.NewString(), Type: "order.Late", SchemaVersion: 1, Payload: []byte(`{}`)}
	if err := eventstore.Append(ctx, slow, "order-slow", 0, eventstore.Context{}, late); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, pool, "early", 3, 1) // later positions, committed first
	reads.mark()
	// Two: the first may belong to a transaction begun before the mark,
	// whose snapshot may not show the early rows; the second began after.
	testenv.Eventually(t, 30*time.Second, "the forwarder reading the events table twice after the early commits", func() bool {
		return reads.sinceMark() >= 2
	})
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

// readCounter is a pgx query tracer that counts the forwarder's reads of
// the events table (the queries of EventsSchemaAdapter) begun after mark
// and finished.
type readCounter struct {
	marked atomic.Bool
	after  atomic.Int64
}

type readBegunAfterMark struct{}

func (c *readCounter) mark()            { c.marked.Store(true) }
func (c *readCounter) sinceMark() int64 { return c.after.Load() }

func (c *readCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, q pgx.TraceQueryStartData) context.Context {
	if c.marked.Load() && strings.Contains(q.SQL, " FROM events") {
		return context.WithValue(ctx, readBegunAfterMark{}, true)
	}
	return ctx
}

func (c *readCounter) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, q pgx.TraceQueryEndData) {
	if ctx.Value(readBegunAfterMark{}) != nil && q.Err == nil {
		c.after.Add(1)
	}
}

// tracedPool is a pool of the database at url whose queries go through tracer.
func tracedPool(t *testing.T, url string, tracer pgx.QueryTracer) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Stopping the forwarder in the middle of a backlog and starting it again
// loses nothing and, since the stop settles the batch in flight before it
// closes the subscriber, sends nothing twice.
func TestForwarderStoppedMidBacklogLosesNothing(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	brokers := testenv.Kafka(t)
	ids := appendEvents(t, pool, "order", 50, 20) // 1,000 events
	stop := startForwarder(t, pool, brokers, 10)  // 100 batches: it is stopped in the middle
	testenv.Eventually(t, 30*time.Second, "part of the backlog forwarded", func() bool {
		var acked int64
		_ = pool.QueryRow(context.Background(), `SELECT coalesce(max(global_position), 0) FROM reader_positions`).Scan(&acked)
		return acked > 100
	})
	stop()
	if p, last := storedOffset(t, pool), lastPosition(t, pool); !p.Before(last) {
		t.Fatalf("the backlog was forwarded (offset %v) before the forwarder was stopped; the test stopped nothing in its middle", p)
	}
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
				_ = pool.QueryRow(context.Background(), `SELECT coalesce(max(global_position), 0) FROM reader_positions`).Scan(&acked)
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

// With both poll intervals an hour long, only an append's notification can
// wake the forwarder once its first reads are over: an append is followed by
// a read. The event can still be invisible to that read, behind a
// transaction open elsewhere on the server (other tests run meanwhile), so
// the test appends again, each append notifying anew, until one arrives.
func TestForwarderWokenByAppendNotification(t *testing.T) {
	pool, url := testenv.Database(t, eventstore.Migrations)
	brokers := testenv.Kafka(t)
	reads := &readCounter{}
	reads.mark()
	f, err := outbox.NewForwarder(outbox.ForwarderConfig{
		DB: stdlib.OpenDBFromPool(tracedPool(t, url, reads)), Brokers: brokers, Routes: routes,
		PollInterval: time.Hour, IdlePollInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Go(t, "forwarder", f.Run)
	// The first read at the start, and the one the listener asks for once
	// it listens (for events appended while nobody listened); then the
	// forwarder waits.
	testenv.Eventually(t, 30*time.Second, "the forwarder's first two reads", func() bool { return reads.sinceMark() >= 2 })

	appendOne := func(v int) {
		e := eventstore.Event{ID: uuid.NewString(), Type: "order.Tested", SchemaVersion: 1, Payload: []byte(`{}`)}
		if err := eventstore.Append(context.Background(), pool, "order-woken", int64(v), eventstore.Context{}, e); err != nil {
			t.Fatal(err)
		}
	}
	before := reads.sinceMark()
	appendOne(0)
	testenv.Eventually(t, 30*time.Second, "a read woken by the append's notification", func() bool { return reads.sinceMark() > before })

	deadline := time.Now().Add(2 * time.Minute) // a topic just created on a real cluster can take a while to take records
	v := 1
	for ; testenv.RecordCount(t, brokers, "order.events") == 0; v++ {
		if time.Now().After(deadline) {
			t.Fatalf("nothing forwarded after %d appends to an idle forwarder (%d reads)", v, reads.sinceMark())
		}
		time.Sleep(200 * time.Millisecond) // the pace of the appends, each a notification
		appendOne(v)
	}
	t.Logf("forwarded after %d appends and %d reads", v, reads.sinceMark())
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
