package service_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// forwarding is a backlog of 3,000 events (100 streams of 30, one
// transaction each) in a fresh event store, a broker, and `order forward`
// built to send them, 10 events per read: the forwarder stores its position
// once per transaction of up to 10 reads, so at the default of 1,000 it
// stored none before the end of the backlog, and a stop or a kill could not
// be seen to come in the middle of one.
type forwarding struct {
	pool    *pgxpool.Pool
	brokers []string
	bin     string
	env     []string
	ids     map[string]bool
}

func newForwarding(t *testing.T) *forwarding {
	t.Helper()
	pool, url := testenv.Database(t, eventstore.Migrations)
	brokers := testenv.Kafka(t)
	f := &forwarding{pool: pool, brokers: brokers, bin: testenv.Build(t, "../cmd/order"), ids: map[string]bool{},
		env: []string{"DATABASE_URL=" + url, "KAFKA_BROKERS=" + brokers[0], "LOG_LEVEL=warn", "FORWARDER_POLL_INTERVAL=10ms", "FORWARDER_BATCH_SIZE=10"}}
	for v := range 30 {
		for s := range 100 {
			e := eventstore.Event{ID: uuid.NewString(), Type: "order.Tested", SchemaVersion: 1, Payload: []byte(`{}`)}
			if err := eventstore.Append(context.Background(), pool, fmt.Sprint("order-", s), int64(v), eventstore.Context{}, e); err != nil {
				t.Fatal(err)
			}
			f.ids[e.ID] = true
		}
	}
	return f
}

// interrupted runs `order forward` until part of the backlog is sent, stops
// it with stop, checks that it left part of the backlog (else the test would
// not have stopped it in the middle of one), starts it again and returns
// every record on order.events once every event has arrived.
func (f *forwarding) interrupted(t *testing.T, how string, stop func(*testenv.Process)) []*kgo.Record {
	t.Helper()
	forwarder := testenv.Start(t, f.bin, f.env, "forward")
	testenv.Eventually(t, 60*time.Second, "part of the backlog forwarded", func() bool {
		acked, _ := f.positions(t)
		return acked > 500
	})
	stop(forwarder)
	acked, last := f.positions(t)
	if acked >= last {
		t.Fatalf("the forwarder had forwarded the whole backlog (up to %d) when it was %s", last, how)
	}
	t.Logf("%s at position %d of %d", how, acked, last)
	testenv.Start(t, f.bin, f.env, "forward")
	return testenv.Records(t, f.brokers, "order.events", len(f.ids), 120*time.Second)
}

// positions returns the position up to which the forwarder stored that
// Kafka has every event, and the last event's position.
func (f *forwarding) positions(t *testing.T) (acked, last int64) {
	t.Helper()
	err := f.pool.QueryRow(context.Background(), `SELECT (SELECT coalesce(max(global_position), 0) FROM reader_positions WHERE reader = 'forwarder'),
		(SELECT coalesce(max(global_position), 0) FROM events)`).Scan(&acked, &last)
	if err != nil {
		t.Fatal(err)
	}
	return acked, last
}

// The forwarder process is stopped with SIGTERM in the middle of a backlog
// and started again: every event reaches Kafka exactly once.
func TestForwarderSIGTERMMidBacklogSendsNothingTwice(t *testing.T) {
	f := newForwarding(t)
	records := f.interrupted(t, "stopped", func(p *testenv.Process) { p.Stop(t, 20*time.Second) })
	seen := map[string]int{}
	for _, r := range records {
		seen[testenv.Header(r, "event_id")]++
	}
	for id := range f.ids {
		if seen[id] != 1 {
			t.Fatalf("event %s reached Kafka %d times, want once", id, seen[id])
		}
	}
	if len(records) != len(f.ids) {
		t.Fatalf("%d records for %d events", len(records), len(f.ids))
	}
}

// The forwarder process is killed (SIGKILL) in the middle of a backlog and
// started again: every event reaches Kafka at least once.
func TestForwarderKilledMidBacklogLosesNothing(t *testing.T) {
	f := newForwarding(t)
	records := f.interrupted(t, "killed", (*testenv.Process).Kill)
	seen := map[string]bool{}
	for _, r := range records {
		seen[testenv.Header(r, "event_id")] = true
	}
	lost := 0
	for id := range f.ids {
		if !seen[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d events never reached Kafka after the forwarder was killed", lost, len(f.ids))
	}
	t.Logf("%d events, %d records: %d sent twice after the kill (at-least-once)", len(f.ids), len(records), len(records)-len(seen))
}
