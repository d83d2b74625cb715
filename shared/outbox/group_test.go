package outbox_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// Two forwarders of one group (two replicas of a service) share the work:
// the group's lock lets one of them at a time read and send a batch, after
// the offset the previous one stored, so without a fault a backlog arrives
// exactly once, each stream's events in order. (Without the lock, or with
// a lock taken after the read's snapshot, a third to two thirds of the
// batches went twice.)
func TestTwoForwardersOfOneGroupSendTheBacklogOnce(t *testing.T) {
	pool, _ := testenv.Database(t, eventstore.Migrations)
	brokers := testenv.Kafka(t)
	ids := appendEvents(t, pool, "order", 20, 50) // 1,000 events
	startForwarder(t, pool, brokers, 20)
	startForwarder(t, pool, brokers, 20)
	last := lastPosition(t, pool)
	testenv.Eventually(t, 60*time.Second, "the backlog forwarded", func() bool { return storedOffset(t, pool) == last })

	sent := testenv.RecordCount(t, brokers, "order.events")
	if sent != 1000 {
		t.Fatalf("the two forwarders sent %d records for 1,000 events: both sent the same batches", sent)
	}
	seen := firstArrivals(testenv.Records(t, brokers, "order.events", 1000, 30*time.Second))
	for stream, want := range ids {
		if !slices.Equal(seen[stream], want) {
			t.Errorf("stream %s: %d of %d events arrived, first occurrences out of stream order at position %d",
				stream, len(seen[stream]), len(want), firstDifference(seen[stream], want))
		}
	}
}

// A standby forwarder, started while the forwarder holding its group's lock
// waits for a Kafka that refuses writes, waits for the lock in its first
// read and stops at once when asked: its wait ends with the stop
// (groupLocked.stopped) rather than when the holder's batch is settled,
// which lasts as long as the outage (or until the holder's ack deadline,
// 30 s). Before, the standby waited for the lock already in Subscribe (the
// subscriber's before-subscribing queries ran under it), its router never
// started its handler, and its stop timed out closing the router.
func TestStandbyForwarderStopsWhileWaitingForTheGroupsLock(t *testing.T) {
	pool, url := testenv.Database(t, eventstore.Migrations)
	brokers, refuse, restore := refusingKafka(t)
	streams := streamsOnPartition(1, 0)
	appendToStreams(t, pool, streams, 0, 1)
	// Each forwarder with a pool of its own, as replicas have.
	startForwarder(t, tracedPool(t, url, nil), brokers, 10)
	first := lastPosition(t, pool)
	testenv.Eventually(t, 60*time.Second, "the first event forwarded", func() bool { return storedOffset(t, pool) == first })

	refuse()
	defer restore()
	appendToStreams(t, pool, streams, 1, 1)
	testenv.Eventually(t, 30*time.Second, "the forwarder holding the group's lock, waiting for Kafka", func() bool {
		return sessions(t, pool, `state = 'idle in transaction' AND query LIKE '%FROM events%'`) == 1
	})
	stopStandby := startForwarder(t, tracedPool(t, url, nil), brokers, 10)
	testenv.Eventually(t, 30*time.Second, "the second forwarder waiting for the group's lock", func() bool {
		return sessions(t, pool, `wait_event_type = 'Lock' AND wait_event = 'advisory'`) == 1
	})

	stopped := make(chan struct{})
	start := time.Now()
	go func() { stopStandby(); close(stopped) }()
	select {
	case <-stopped:
		t.Logf("the standby stopped in %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("the standby forwarder did not stop within 5 s: it waits for the group's lock, held while Kafka refuses")
	}
}

// sessions counts the test database's sessions that match the condition on
// pg_stat_activity.
func sessions(t *testing.T, pool *pgxpool.Pool, condition string) int {
	t.Helper()
	var n int
	err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND `+condition).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
