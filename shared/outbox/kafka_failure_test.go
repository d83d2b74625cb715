package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/devkafka"
	"github.com/es-outbox/reference/shared/eventstore"
	"github.com/es-outbox/reference/shared/testenv"
)

// Kafka refuses every write from the forwarder's third produce request on,
// so a batch fails part way through. While it refuses, the stored offset
// must never pass an event that is not in Kafka; once Kafka takes writes
// again, every event arrives, and a consumer that skips what it has already
// seen gets each stream's events in order.
func TestForwarderRefusedByKafkaMidBatchLosesNothingAndStoresNoOffsetPastIt(t *testing.T) {
	if os.Getenv("TEST_KAFKA_BROKERS") != "" {
		t.Skip("needs the in-process broker to make it refuse writes")
	}
	pool, _ := testenv.Database(t, eventstore.Migrations)
	broker, err := devkafka.Start(devkafka.Config{Partitions: 4, Topics: devkafka.Topics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	brokers := []string{broker.Addr()}
	var produceRequests atomic.Int64
	var restored atomic.Bool
	broker.RefuseProduceWhile(func() bool { return produceRequests.Add(1) > 2 && !restored.Load() })

	ids := appendEvents(t, pool, "order", 20, 15) // 300 events
	startForwarder(t, pool, brokers, 50)

	// While Kafka refuses, note the furthest offset the forwarder stores.
	var furthest eventstore.Position
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if p := storedOffset(t, pool); furthest.Before(p) {
			furthest = p
		}
	}
	if produceRequests.Load() <= 2 {
		t.Fatalf("the forwarder made %d produce requests; the test did not make Kafka refuse any", produceRequests.Load())
	}
	inKafka := map[string]bool{}
	for _, r := range testenv.Records(t, brokers, "order.events", 300, 2*time.Second) {
		inKafka[testenv.Header(r, "event_id")] = true
	}
	if len(inKafka) == 300 {
		t.Fatal("every event reached Kafka while it refused writes; the test exercised nothing")
	}
	for _, id := range eventsUpTo(t, pool, furthest) {
		if !inKafka[id] {
			t.Fatalf("offset %v was stored, but event %s before it is not in Kafka", furthest, id)
		}
	}

	restored.Store(true)
	records := testenv.Records(t, brokers, "order.events", 300, 60*time.Second)
	seen := firstArrivals(records)
	for stream, want := range ids {
		if fmt.Sprint(seen[stream]) != fmt.Sprint(want) {
			t.Errorf("stream %s arrived (first occurrences) as %v, want %v", stream, seen[stream], want)
		}
	}
	t.Logf("%d records for 300 events after %d refused produce requests", len(records), produceRequests.Load()-2)
}

// storedOffset is the forwarder group's stored read position.
func storedOffset(t *testing.T, pool *pgxpool.Pool) eventstore.Position {
	t.Helper()
	var p eventstore.Position
	var tx string
	err := pool.QueryRow(context.Background(),
		`SELECT offset_acked, last_processed_transaction_id::text FROM outbox_offsets WHERE consumer_group = 'forwarder'`).Scan(&p.GlobalPosition, &tx)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Start
	}
	if err != nil {
		t.Fatal(err)
	}
	p.TransactionID, err = strconv.ParseUint(tx, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// eventsUpTo returns the ids of the events at or before p in commit order.
func eventsUpTo(t *testing.T, pool *pgxpool.Pool, p eventstore.Position) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT event_id::text FROM events WHERE (transaction_id, global_position) <= ($1::text::xid8, $2)`,
		strconv.FormatUint(p.TransactionID, 10), p.GlobalPosition)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// The broker goes away twice while events are being appended and forwarded,
// and comes back with its data. Every event arrives, and each stream's events
// first arrive in stream order: a producer that gave up on an event while
// the broker was away must not let a later event of its partition overtake
// it when the broker is back.
func TestForwarderKeepsStreamOrderAcrossBrokerRestarts(t *testing.T) {
	if os.Getenv("TEST_KAFKA_BROKERS") != "" {
		t.Skip("needs the in-process broker to restart it")
	}
	pool, _ := testenv.Database(t, eventstore.Migrations)
	bin := testenv.Build(t, "github.com/es-outbox/reference/shared/cmd/devkafka")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"--port", port, "--data-dir", t.TempDir(), "--partitions", "4"}
	broker := testenv.Start(t, bin, nil, args...)
	testenv.Eventually(t, 10*time.Second, "the broker listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	startForwarder(t, pool, []string{addr}, 100)

	const streams, perStream = 20, 200 // about 300 events/s for about 14 s, through both outages
	appended := make(chan map[string][]string, 1)
	go func() {
		ids := map[string][]string{}
		defer func() { appended <- ids }()
		for v := range perStream {
			for s := range streams {
				stream := fmt.Sprintf("order-%d", s)
				e := eventstore.Event{ID: uuid.NewString(), Type: "order.Tested", SchemaVersion: 1, Payload: []byte(`{}`)}
				if err := eventstore.Append(context.Background(), pool, stream, int64(v), eventstore.Context{}, e); err != nil {
					t.Errorf("append: %v", err)
					return
				}
				ids[stream] = append(ids[stream], e.ID)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for range 2 {
		time.Sleep(2 * time.Second)
		broker.Kill() // kill -9: connections and requests in flight die with it
		time.Sleep(5 * time.Second)
		broker = testenv.Start(t, bin, nil, args...)
	}
	ids := <-appended

	seen := firstArrivals(testenv.Records(t, []string{addr}, "order.events", streams*perStream, 90*time.Second))
	for stream, want := range ids {
		if got := seen[stream]; !slices.Equal(got, want) {
			t.Errorf("stream %s: %d of %d events arrived, first occurrences out of stream order at position %d",
				stream, len(got), len(want), firstDifference(got, want))
		}
	}
}

// firstArrivals returns, per key (stream), the event ids in the order of
// their first record: what a consumer that skips repeats sees.
func firstArrivals(records []*kgo.Record) map[string][]string {
	arrived := map[string][]string{}
	seen := map[string]bool{}
	for _, r := range records {
		if id := testenv.Header(r, "event_id"); !seen[id] {
			seen[id] = true
			arrived[string(r.Key)] = append(arrived[string(r.Key)], id)
		}
	}
	return arrived
}

func firstDifference(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
