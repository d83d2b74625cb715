package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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
	seen := map[string][]string{}
	firstSeen := map[string]bool{}
	for _, r := range records {
		id := testenv.Header(r, "event_id")
		if !firstSeen[id] {
			firstSeen[id] = true
			seen[string(r.Key)] = append(seen[string(r.Key)], id)
		}
	}
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
