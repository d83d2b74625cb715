package outbox_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// Faults only a replicated cluster has. testenv.KafkaCluster skips these,
// saying so, on the development broker.

// The forwarder drains a backlog of 100k events when the leader of
// partition 0 is killed -9; another replica takes over, and the old leader
// comes back 3 s later behind the others. Every event reaches Kafka and
// each stream's events first arrive in stream order.
func TestForwarderDrainingABacklogSurvivesItsLeaderKilled(t *testing.T) {
	c := testenv.KafkaCluster(t)
	pool, _ := testenv.Database(t, eventstore.Migrations)
	const backlog = 100_000
	fillBacklog(t, pool, backlog)
	last := lastPosition(t, pool)
	startForwarder(t, pool, c.Brokers(), 100)

	testenv.Eventually(t, 60*time.Second, "the forwarder under way", func() bool {
		return eventstore.Start.Before(storedOffset(t, pool))
	})
	leader := leaderOf(t, c, 0)
	mustDo(t, c.Kill(leader))
	if p := storedOffset(t, pool); !p.Before(last) {
		t.Fatalf("the backlog was drained (offset %v) before the leader was killed; the test exercised nothing", p)
	}
	time.Sleep(3 * time.Second) // the node stays down a while, as a crashed machine would
	mustDo(t, c.StartNode(leader))

	checkStreamsArrivedInOrder(t, pool, c.Brokers(), backlog)
}

// All three nodes are restarted one after the other (SIGTERM, start, wait
// until every replica is in sync again), as an upgrade would, while events
// are appended and forwarded.
func TestForwarderKeepsEveryEventThroughARollingRestart(t *testing.T) {
	c := testenv.KafkaCluster(t)
	pool, _ := testenv.Database(t, eventstore.Migrations)
	startForwarder(t, pool, c.Brokers(), 100)

	ctx, stopLoad := context.WithCancel(context.Background())
	appended := make(chan int, 1)
	go func() { appended <- appendUntil(ctx, t, pool, 20) }()
	for _, n := range c.Nodes {
		mustDo(t, c.Stop(n.ID))
		mustDo(t, c.StartNode(n.ID))
		healthy, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		mustDo(t, c.WaitHealthy(healthy))
		cancel()
	}
	stopLoad()
	n := <-appended
	t.Logf("%d events appended during the rolling restart", n)
	checkStreamsArrivedInOrder(t, pool, c.Brokers(), n)
}

// appendUntil appends one event to each of streams streams every 50 ms
// (about 400 events/s) until ctx ends, and returns how many it appended.
func appendUntil(ctx context.Context, t *testing.T, pool *pgxpool.Pool, streams int) int {
	n := 0
	for v := 0; ctx.Err() == nil; v++ {
		for s := range streams {
			e := eventstore.Event{ID: uuid.NewString(), Type: "order.Tested", SchemaVersion: 1, Payload: []byte(`{}`)}
			if err := eventstore.Append(context.Background(), pool, fmt.Sprintf("order-%d", s), int64(v), eventstore.Context{}, e); err != nil {
				t.Errorf("append: %v", err)
				return n
			}
			n++
		}
		time.Sleep(50 * time.Millisecond) // the pace of the load
	}
	return n
}

// checkStreamsArrivedInOrder reads order.events until it has all n events
// of the store and checks that each stream's events first arrived in stream
// order.
func checkStreamsArrivedInOrder(t *testing.T, pool *pgxpool.Pool, brokers []string, n int) {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT stream_id, event_id::text FROM events ORDER BY stream_id, stream_version`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	var stream, id string
	if _, err := pgx.ForEachRow(rows, []any{&stream, &id}, func() error {
		want[stream] = append(want[stream], id)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	records := testenv.Records(t, brokers, "order.events", n, 3*time.Minute)
	seen := firstArrivals(records)
	arrived := 0
	for stream, ids := range want {
		arrived += len(seen[stream])
		if !slices.Equal(seen[stream], ids) {
			t.Errorf("stream %s: %d of %d events arrived, first occurrences out of stream order at position %d",
				stream, len(seen[stream]), len(ids), firstDifference(seen[stream], ids))
		}
	}
	t.Logf("%d events, %d records in Kafka (%d sent twice)", arrived, len(records), len(records)-arrived)
}
