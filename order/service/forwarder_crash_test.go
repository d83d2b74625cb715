package service_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/es-outbox/reference/shared/devtools/testenv"
	"github.com/es-outbox/reference/shared/eventstore"
)

// backlog appends streams × perStream events, one transaction each, and
// returns their ids.
func backlog(t *testing.T, pool *pgxpool.Pool, streams, perStream int) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for v := range perStream {
		for s := range streams {
			e := eventstore.Event{ID: uuid.NewString(), Type: "order.Tested", SchemaVersion: 1, Payload: []byte(`{}`)}
			if err := eventstore.Append(context.Background(), pool, fmt.Sprint("order-", s), int64(v), eventstore.Context{}, e); err != nil {
				t.Fatal(err)
			}
			ids[e.ID] = true
		}
	}
	return ids
}

// startForwarding runs `order forward` until part of the backlog is sent.
func startForwarding(t *testing.T, pool *pgxpool.Pool, bin string, env []string) *testenv.Process {
	t.Helper()
	forwarder := testenv.Start(t, bin, env, "forward")
	testenv.Eventually(t, 60*time.Second, "part of the backlog forwarded", func() bool {
		var acked int64
		_ = pool.QueryRow(context.Background(), `SELECT coalesce(max(offset_acked), 0) FROM outbox_offsets`).Scan(&acked)
		return acked > 500
	})
	return forwarder
}

// The forwarder process is stopped with SIGTERM in the middle of a backlog
// and started again: every event reaches Kafka exactly once.
func TestForwarderSIGTERMMidBacklogSendsNothingTwice(t *testing.T) {
	pool, url := testenv.Database(t, eventstore.Migrations)
	brokers := testenv.Kafka(t)
	bin := testenv.Build(t, "../cmd/order")
	env := []string{"DATABASE_URL=" + url, "KAFKA_BROKERS=" + brokers[0], "LOG_LEVEL=warn", "FORWARDER_POLL_INTERVAL=10ms"}
	ids := backlog(t, pool, 100, 30)

	startForwarding(t, pool, bin, env).Stop(t, 20*time.Second)
	testenv.Start(t, bin, env, "forward")

	records := testenv.Records(t, brokers, "order.events", len(ids), 120*time.Second)
	seen := map[string]int{}
	for _, r := range records {
		seen[testenv.Header(r, "event_id")]++
	}
	for id := range ids {
		if seen[id] != 1 {
			t.Fatalf("event %s reached Kafka %d times, want once", id, seen[id])
		}
	}
	if len(records) != len(ids) {
		t.Fatalf("%d records for %d events", len(records), len(ids))
	}
}

// The forwarder process is killed (SIGKILL) in the middle of a backlog and
// started again: every event reaches Kafka at least once.
func TestForwarderKilledMidBacklogLosesNothing(t *testing.T) {
	pool, url := testenv.Database(t, eventstore.Migrations)
	brokers := testenv.Kafka(t)
	bin := testenv.Build(t, "../cmd/order")
	env := []string{"DATABASE_URL=" + url, "KAFKA_BROKERS=" + brokers[0], "LOG_LEVEL=warn", "FORWARDER_POLL_INTERVAL=10ms"}
	ids := backlog(t, pool, 100, 30)

	startForwarding(t, pool, bin, env).Kill()
	testenv.Start(t, bin, env, "forward")

	records := testenv.Records(t, brokers, "order.events", len(ids), 120*time.Second)
	seen := map[string]bool{}
	for _, r := range records {
		seen[testenv.Header(r, "event_id")] = true
	}
	lost := 0
	for id := range ids {
		if !seen[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d events never reached Kafka after the forwarder was killed", lost, len(ids))
	}
	t.Logf("%d events, %d records: %d sent twice after the kill (at-least-once)", len(ids), len(records), len(records)-len(seen))
}
